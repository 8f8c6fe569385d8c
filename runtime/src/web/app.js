// flowc's web UI, part 6 of 6: the page's life. The dialog, the job's
// actions (cancel, savepoint, stop with savepoint), navigation, the token
// prompt and the poll loop: once a second for what can change, never for
// a page that cannot (an ended job, an unknown tab, a missing job), and
// nothing at all for a page that was left.
'use strict';

// ---------- the dialog ----------
let modalOk = null, modalReturn = null;
function openModal(title, body, okLabel, danger, onOk) {
  modalReturn = document.activeElement;
  $('m-title').textContent = title;
  $('m-body').innerHTML = body;
  $('m-err').textContent = '';
  $('m-ok').textContent = okLabel;
  $('m-ok').className = 'btn primary' + (danger ? ' danger' : '');
  $('m-ok').disabled = false;
  modalOk = onOk;
  $('modal').classList.add('show');
  const first = $('m-body').querySelector('input[type=text]');
  if (first) first.focus(); else $('m-ok').focus();
}
function closeModal() {
  $('modal').classList.remove('show');
  modalOk = null;
  if (modalReturn && modalReturn.focus && document.contains(modalReturn)) modalReturn.focus();
  modalReturn = null;
}
async function confirmModal() {
  if (!modalOk) return;
  $('m-ok').disabled = true;
  $('m-err').textContent = '';
  try { await modalOk(); closeModal(); poll(); } catch (e) { $('m-err').textContent = e.message; $('m-ok').disabled = false; }
}
$('m-cancel').addEventListener('click', closeModal);
$('m-ok').addEventListener('click', confirmModal);
$('modal').addEventListener('click', e => { if (e.target === $('modal')) closeModal(); });
$('modal').addEventListener('keydown', e => {
  if (e.key === 'Enter' && e.target.matches && e.target.matches('input[type=text]')) { e.preventDefault(); confirmModal(); }
  if (e.key === 'Tab') {
    // Keep the focus inside the dialog while it is open.
    const f = [...$('modal').querySelectorAll('input, button:not(:disabled)')];
    if (!f.length) return;
    const i = f.indexOf(document.activeElement);
    if (e.shiftKey && i <= 0) { e.preventDefault(); f[f.length - 1].focus(); } else if (!e.shiftKey && i === f.length - 1) { e.preventDefault(); f[0].focus(); }
  }
});
document.addEventListener('keydown', e => { if (e.key === 'Escape' && $('modal').classList.contains('show')) closeModal(); });

// ---------- the job's actions ----------
function dirField() {
  const def = defaultSavepointDir ? `default: ${defaultSavepointDir}` : 'no state.savepoints.dir configured: give a directory';
  return `<label>Target directory<input type="text" id="m-dir" placeholder="${esc(def)}"></label>`;
}
function recordOp(jid, kind, tid) {
  (ops[jid] = ops[jid] || []).push({ kind, tid, status: 'IN_PROGRESS', time: Date.now() });
  ops[jid] = ops[jid].slice(-10);
  saveOps();
}
function jobAction(act) {
  const jid = route.jid;
  const h1 = $('header').querySelector('h1');
  const name = (h1 && h1.firstChild && h1.firstChild.textContent.trim()) || jid;
  const path = `/jobs/${enc(jid)}`;
  const dir = () => ($('m-dir') && $('m-dir').value.trim()) || null;
  if (act === 'cancel') {
    openModal('Cancel job?', `<p>Cancel <b>${esc(name)}</b> (<span class="mono">${esc(jid)}</span>)?</p><p class="muted">Its tasks are cancelled without a savepoint; the job ends CANCELED.</p>`,
      'Cancel Job', true, () => api(`${path}?mode=cancel`, { method: 'PATCH', signal: null }));
  } else if (act === 'savepoint') {
    openModal('Trigger a savepoint', `<p>Take a savepoint of <b>${esc(name)}</b>; the job keeps running.</p>${dirField()}`,
      'Trigger Savepoint', false, async () => {
        const r = await api(`${path}/savepoints`, jsonPost({ 'target-directory': dir(), 'cancel-job': false }));
        recordOp(jid, 'savepoint', r['request-id']);
      });
  } else if (act === 'stop') {
    openModal('Stop with savepoint?', `<p>Stop <b>${esc(name)}</b> gracefully: take a savepoint, then finish the job.</p>${dirField()}
      <label><input type="checkbox" id="m-drain"> Drain: emit MAX_WATERMARK first, firing all event-time timers and windows</label>`,
      'Stop Job', true, async () => {
        const r = await api(`${path}/stop`, jsonPost({ targetDirectory: dir(), drain: $('m-drain').checked }));
        recordOp(jid, 'stop', r['request-id']);
      });
  }
}

// ---------- navigation ----------
document.addEventListener('click', e => {
  const act = e.target.closest('[data-act]');
  if (act && !act.disabled) { jobAction(act.dataset.act); return; }
  if (e.target.id === 'look-again') { poll(); return; }
  if (e.target.closest('a, details, summary, input, button, select, label')) return;
  const row = e.target.closest('[data-href]');
  if (row) location.hash = row.dataset.href;
});
// Graph vertices and rows with a data-href are links for the keyboard too.
document.addEventListener('keydown', e => {
  if ((e.key === 'Enter' || e.key === ' ') && e.target.matches && e.target.matches('[data-href][tabindex]')) {
    e.preventDefault();
    location.hash = e.target.dataset.href;
  }
});
window.addEventListener('hashchange', () => {
  const old = route;
  route = parseHash(location.hash);
  logState.key = null; // a log is read afresh on each visit
  if (old.view !== route.view || old.jid !== route.jid || old.tmid !== route.tmid) {
    setHTML('header', ''); setHTML('content', '<div class="empty">Loading…</div>');
    window.scrollTo(0, 0);
  }
  poll();
});

// ---------- polling ----------
function askToken(message) {
  openModal('Token needed', `<p>${esc(message)}</p><label>REST token<input type="text" id="m-token" autocomplete="off"></label>`,
    'Use Token', false, async () => {
      const t = (($('m-token') && $('m-token').value) || '').trim();
      if (!t) throw new Error('enter the token (flowc.security.rest.token)');
      sessionStorage.setItem(TOKEN_KEY, t);
      features = {};
    });
}
function markNav(name) {
  document.querySelectorAll('#nav a').forEach(a => a.classList.toggle('active', a.dataset.nav === name));
}
function connected(ok) {
  $('banner').classList.toggle('show', !ok);
  $('main').classList.toggle('stale', !ok);
  $('side-foot').classList.toggle('down', !ok);
}
let route = parseHash(location.hash);
let gen = 0, timer = null, lastOk = 0, pollCtrl = null;
async function poll() {
  clearTimeout(timer);
  // Whatever the previous round still waits for is dropped, unsent.
  if (pollCtrl) pollCtrl.abort();
  pollCtrl = new AbortController();
  pollSignal = pollCtrl.signal;
  const my = ++gen, r = route;
  const view = views[r.view];
  let again = true;
  try {
    if (!view) {
      again = false;
      markNav('');
      setHTML('header', '<h1>Not found</h1>');
      setHTML('content', `<div class="alert">There is no page “${esc(r.path)}”.</div><p><a href="#/overview">The overview</a></p>`);
      return;
    }
    if (view.tabs && !view.tabs.has(r.tab)) {
      again = false;
      markNav(view.nav || r.view);
      setHTML('header', `<h1>${r.jid ? 'Job ' + esc(r.jid) : esc(r.tmid || r.view)}</h1>`);
      setHTML('content', `<div class="alert">There is no tab “${esc(r.tab)}”.</div><p><a href="${esc(location.hash.replace(/\/[^/]*$/, ''))}">Back</a></p>`);
      return;
    }
    if (!features.asked) {
      features = { asked: true, ...((await api('/config')).features || {}) };
      $('nav-submit').hidden = features['web-submit'] === false;
    }
    const [ov, data] = await Promise.all([api('/overview'), view.fetch(r)]);
    if (my !== gen) return;
    lastOk = Date.now();
    connected(true);
    $('conn').textContent = `updated ${fmtTime(lastOk).slice(11)}`;
    $('version').textContent = ov['flink-version'];
    $('n-running').textContent = ov['jobs-running'];
    $('n-completed').textContent = ov['jobs-finished'] + ov['jobs-cancelled'] + ov['jobs-failed'];
    $('n-tms').textContent = ov.taskmanagers;
    markNav(r.view === 'job' ? (TERMINAL.has(data.job.state) ? 'completed' : 'running') : (view.nav || r.view));
    view.render(r, data, ov);
    if (view.again) again = view.again(r, data);
    document.title = r.view === 'job' ? `${data.job.name} · flowc` : 'flowc Dashboard';
  } catch (e) {
    if (my !== gen || e.name === 'AbortError') { again = false; return; }
    if (e instanceof NetError) {
      $('banner').textContent = `The JobManager at ${location.host} is not answering (${e.message}). Retrying every second…` +
        (lastOk ? ` Last contact ${fmtTime(lastOk)}; the data below is stale.` : '');
      connected(false);
      $('conn').textContent = 'JobManager unreachable';
    } else {
      connected(true);
      $('conn').textContent = `updated ${fmtTime(Date.now()).slice(11)}`;
      markNav(view && (view.nav || r.view));
      setHTML('header', `<h1>${r.view === 'job' ? 'Job ' + esc(r.jid) : r.view === 'taskmanager' ? 'TaskManager ' + esc(r.tmid) : 'Error'}</h1>`);
      if (e.status === 401) {
        again = false;
        sessionStorage.removeItem(TOKEN_KEY);
        setHTML('content', `<div class="alert">${esc(e.message)}</div>`);
        askToken('This JobManager asks for its REST token (flowc.security.rest.token).');
      } else if (e.status === 404 && (r.view === 'job' || r.view === 'taskmanager')) {
        again = false;
        setHTML('content', `<div class="alert">${esc(e.message)}</div><p><a href="#/overview">Back to the overview</a> · <button class="btn small" id="look-again">Look again</button></p>`);
      } else {
        setHTML('content', `<div class="alert">${esc(e.message)}</div><p><a href="#/overview">Back to the overview</a></p>`);
      }
    }
  } finally {
    if (my === gen && again) timer = setTimeout(poll, POLL_MS);
  }
}
poll();
