// flowc's web UI, part 3 of 6: the cluster's pages. The overview and job
// lists, the TaskManagers and one TaskManager's detail (memory, metrics,
// logs, stdout, thread dump), the JobManager (metrics, configuration, logs,
// stdout, environment, thread dump).
'use strict';

function jobsTable(jobs, emptyText) {
  if (!jobs.length) return `<div class="empty">${esc(emptyText)}</div>`;
  return `<table><tr><th>Job Name</th><th>Start Time</th><th class="num">Duration</th><th>End Time</th><th>Tasks</th><th>Status</th></tr>` +
    jobs.map(j => `<tr class="click" data-href="#/jobs/${esc(j.jid)}">
      <td><a href="#/jobs/${esc(j.jid)}">${esc(j.name)}</a><div class="mono muted">${esc(j.jid)}</div></td>
      <td class="nowrap">${fmtTime(j['start-time'])}</td><td class="num">${fmtDur(j.duration)}</td>
      <td class="nowrap">${fmtTime(j['end-time'])}</td>
      <td>${taskPills(j.tasks)}</td><td>${tag(j.state)}</td></tr>`).join('') + '</table>';
}
function splitJobs(jobs) {
  const running = jobs.filter(j => !TERMINAL.has(j.state)).sort((a, b) => b['start-time'] - a['start-time']);
  const ended = jobs.filter(j => TERMINAL.has(j.state)).sort((a, b) => (b['end-time'] || 0) - (a['end-time'] || 0));
  return { running, ended };
}

views.overview = {
  fetch: async () => ({ jobs: (await api('/jobs/overview')).jobs }),
  render(_, d, ov) {
    setHTML('header', `<h1>Overview</h1><div class="sub">The cluster and its jobs.</div>`);
    const { running, ended } = splitJobs(d.jobs);
    const used = ov['slots-total'] - ov['slots-available'];
    setHTML('content', `
      <div class="stats">
        <div class="stat"><div class="k">Version</div><div class="v" style="font-size:18px">${esc(ov['flink-version'])}</div><div class="muted">commit ${esc(ov['flink-commit'])}</div></div>
        <div class="stat"><div class="k">TaskManagers</div><div class="v">${ov.taskmanagers}</div></div>
        <div class="stat"><div class="k">Task slots available</div><div class="v">${ov['slots-available']} <small>/ ${ov['slots-total']}</small></div>
          <div class="bar" style="margin-top:6px">${ov['slots-total'] ? `<span style="width:${100 * used / ov['slots-total']}%;background:#1890ff" title="${used} in use"></span>` : ''}</div></div>
        <div class="stat"><div class="k">Running jobs</div><div class="v" style="color:${color('RUNNING')}">${ov['jobs-running']}</div></div>
        <div class="stat"><div class="k">Finished</div><div class="v" style="color:${color('FINISHED')}">${ov['jobs-finished']}</div></div>
        <div class="stat"><div class="k">Cancelled</div><div class="v" style="color:${color('CANCELED')}">${ov['jobs-cancelled']}</div></div>
        <div class="stat"><div class="k">Failed</div><div class="v" style="color:${color('FAILED')}">${ov['jobs-failed']}</div></div>
      </div>
      ${card('Running Job List', jobsTable(running, 'No running jobs.'))}
      ${card('Completed Job List', jobsTable(ended, 'No completed jobs.'))}`);
  },
};
views.running = {
  nav: 'running',
  fetch: views.overview.fetch,
  render(_, d) {
    setHTML('header', `<h1>Running Jobs</h1><div class="sub">Jobs that have not reached a terminal state.</div>`);
    setHTML('content', card('Running Job List', jobsTable(splitJobs(d.jobs).running, 'No running jobs.')));
  },
};
views.completed = {
  nav: 'completed',
  fetch: views.overview.fetch,
  render(_, d) {
    setHTML('header', `<h1>Completed Jobs</h1><div class="sub">Finished, cancelled and failed jobs.</div>`);
    setHTML('content', card('Completed Job List', jobsTable(splitJobs(d.jobs).ended, 'No completed jobs.')));
  },
};

// ---------- TaskManagers ----------
views.taskmanagers = {
  async fetch() {
    const tms = (await api('/taskmanagers')).taskmanagers;
    const details = await Promise.all(tms.map(t => soft(() => api('/taskmanagers/' + enc(t.id)))));
    return { tms: tms.map((t, i) => ({ ...t, ...(details[i] && !details[i].error ? details[i] : {}) })) };
  },
  render(_, d) {
    setHTML('header', `<h1>TaskManagers</h1><div class="sub">Workers registered at this JobManager; a TaskManager is dropped when its heartbeats stop.</div>`);
    const now = Date.now();
    const rows = d.tms.slice().sort((a, b) => a.id.localeCompare(b.id)).map(t => {
      const used = t.slotsNumber - t.freeSlots;
      const hb = t.timeSinceLastHeartbeat;
      const ago = hb > 0 ? Math.max(0, now - hb) : -1;
      const hw = t.hardware || {};
      return `<tr class="click" data-href="#/taskmanagers/${esc(enc(t.id))}">
        <td><a href="#/taskmanagers/${esc(enc(t.id))}" class="mono">${esc(t.id)}</a><div class="muted mono">${esc(t.path)}</div></td>
        <td class="num">${t.dataPort}</td>
        <td class="nowrap">${fmtTime(hb)}<div class="muted">${ago >= 0 ? (ago / 1000).toFixed(1) + ' s ago' : ''}</div></td>
        <td style="min-width:110px"><div class="nowrap">${used} used / ${t.freeSlots} free</div>
          <div class="bar" style="margin-top:4px">${t.slotsNumber ? `<span style="width:${100 * used / t.slotsNumber}%;background:#1890ff"></span>` : ''}</div></td>
        <td class="num">${fmtNum(t.assignedTasks)}</td>
        <td class="num">${hw.cpuCores ?? '-'} cores<div class="muted">${fmtBytes(hw.physicalMemory)} memory${hw.freeMemory ? `, ${fmtBytes(hw.freeMemory)} free` : ''}</div></td>
        <td class="num">${t.pid ?? '-'}</td>
        <td class="nowrap">${fmtTime(t.registered)}</td></tr>`;
    }).join('');
    setHTML('content', card(`TaskManagers ${sub(`${d.tms.length} registered`)}`,
      d.tms.length ? `<table><tr><th>ID / Path</th><th class="num">Data Port</th><th>Last Heartbeat</th><th>Slots</th>
        <th class="num">Assigned Tasks</th><th class="num">Hardware</th><th class="num">PID</th><th>Registered</th></tr>${rows}</table>`
        : '<div class="empty">No TaskManager is registered. Start one with <code>flowc taskmanager</code>.</div>'));
  },
};

// ---------- a process's metrics, logs, stdout, thread dump ----------
// `base` is `/taskmanagers/<id>` or `/jobmanager`; `scope` names the charts.
async function fetchProcessTab(r, base, scope) {
  if (r.tab === 'metrics') {
    const list = await soft(() => api(`${base}/metrics`), `${scope}-metrics`);
    if (list.error) return { metrics: list };
    const ids = list.map(m => m.id);
    const values = ids.length ? metricMap(await api(`${base}/metrics?get=${ids.map(enc).join(',')}`)) : {};
    const charted = chosenFor(scope, ids, PROCESS_CHARTS);
    sampleChosen(`${scope}${base}`, values, charted);
    return { metrics: { ids, values, charted } };
  }
  if (r.tab === 'logs') return { log: await fetchLog(base, r.a, scope) };
  if (r.tab === 'stdout') return { log: await fetchLog(base, 'stdout', scope) };
  if (r.tab === 'threads') {
    const key = `${base}/thread-dump`;
    if (!threadDumps.has(key)) threadDumps.set(key, await soft(() => api(key), `${scope}-threads`));
    return { threads: threadDumps.get(key) };
  }
  return {};
}
const PROCESS_CHARTS = ['Status.JVM.CPU.Load', 'Status.JVM.Memory.Heap.Used', 'Status.JVM.Threads.Count'];
const threadDumps = new Map();

function metricsTab(scope, base, m) {
  if (!m || m.error) return emptyCard('Metrics', m ? m.error : 'loading…');
  const rows = m.ids.slice().sort().map(id => {
    const v = m.values[id];
    const bytes = /Memory|Bytes|Heap|NonHeap|Direct|Mapped/.test(id) && !/Count|Segments|Usage|Load/.test(id);
    return `<tr><td class="mono">${esc(id)}</td><td class="num">${esc(bytes ? fmtBytes(v) : fmtNum(v))}</td><td class="num mono muted">${esc(v ?? '-')}</td></tr>`;
  }).join('');
  return card(`Charts ${sub('choose metrics to follow over time')}`, chartsPanel(scope, `${scope}${base}`, m.ids, m.charted, m.values), 'body') +
    card(`Metrics ${sub(`${m.ids.length} reported`)}`, rows ? `<table><tr><th>Metric</th><th class="num">Value</th><th class="num">Raw</th></tr>${rows}</table>` : '<div class="empty">None reported.</div>');
}

// Logs: the file list, and one file's text; with "follow" the text is
// fetched again every second and the view stays at its end.
const logState = { follow: false, key: null, text: null, error: null, at: 0 };
const MAX_LOG_CHARS = 2_000_000;
async function fetchLog(base, file, scope) {
  const listed = file === 'stdout' ? null : await soft(() => api(`${base}/logs`), `${scope}-logs`);
  const path = file === 'stdout' ? `${base}/stdout` : file ? `${base}/logs/${enc(file)}` : `${base}/log`;
  if (logState.key !== path || logState.follow) {
    try {
      const text = await apiText(path, { timeout: 15000 });
      Object.assign(logState, { key: path, text: text.length > MAX_LOG_CHARS ? text.slice(-MAX_LOG_CHARS) : text, error: null, at: Date.now(), cut: text.length > MAX_LOG_CHARS });
    } catch (e) {
      if (e instanceof NetError || e.name === 'AbortError') throw e;
      Object.assign(logState, { key: path, text: '', error: isUnserved(e) ? 'This JobManager does not serve this log.' : e.message, at: Date.now() });
    }
  }
  return { listed, path, file };
}
function renderLog(r, base, hrefBase, d) {
  const { listed, path, file } = d.log;
  const files = listed && !listed.error && Array.isArray(listed.logs) ? listed.logs : [];
  const stdout = file === 'stdout';
  const skeleton = `<div class="card"><h2><span id="log-title"></span>
      <span class="actions"><label class="nowrap"><input type="checkbox" id="log-follow"> Follow</label>
      <button class="btn small" id="log-refresh">Reload</button><a class="btn small" id="log-raw" target="_blank" rel="noopener">Raw</a></span></h2>
      <div id="log-files"></div><pre class="log" id="log-text" tabindex="0" aria-label="log text"></pre></div>`;
  if (!$('log-text') || $('content').dataset.logFor !== path) {
    $('content').__html = null;
    $('content').innerHTML = skeleton;
    $('content').dataset.logFor = path;
  }
  $('log-follow').checked = logState.follow;
  $('log-raw').href = path;
  const lines = logState.text ? logState.text.split('\n').length : 0;
  setHTML('log-title', `${esc(stdout ? 'Standard output' : file || 'Log')} ${sub(`${path} · ${fmtNum(lines)} lines · read ${fmtClock(logState.at)}${logState.cut ? ' · the end only' : ''}`)}`);
  setHTML('log-files', stdout ? '' : files.length
    ? `<div class="filelist">${[['', 'the main log']].concat(files.map(f => [f.name, `${fmtBytes(f.size)} · ${fmtTime(f.mtime)}`])).map(([n, what]) =>
      `<a href="${hrefBase}/logs${n ? '/' + esc(enc(n)) : ''}" class="${(file || '') === n ? 'active' : ''}"><span class="mono">${esc(n || 'log')}</span> <span class="muted">${esc(what)}</span></a>`).join('')}</div>`
    : (listed && listed.error ? `<div class="muted" style="padding:6px 16px">${esc(listed.error)}</div>` : ''));
  const pre = $('log-text');
  const text = logState.error ? `(${logState.error})` : (logState.text || '(empty)');
  if (pre.__text !== text) {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = text;
    pre.__text = text;
    if (logState.follow || atEnd) pre.scrollTop = pre.scrollHeight;
  }
}
document.addEventListener('change', e => {
  if (e.target.id === 'log-follow') {
    logState.follow = e.target.checked;
    if (logState.follow) { logState.key = null; poll(); } else { poll(); }
  }
});
document.addEventListener('click', e => {
  if (e.target.id === 'log-refresh') { logState.key = null; poll(); }
  if (e.target.id === 'threads-refresh') { threadDumps.clear(); poll(); }
});

function threadsTab(t) {
  if (!t || t.error) return emptyCard('Thread Dump', t ? t.error : 'loading…');
  const infos = t.threadInfos || [];
  return `<div class="card"><h2>Thread Dump ${sub(`${infos.length} threads`)}<span class="actions"><button class="btn small" id="threads-refresh">Take again</button></span></h2>
    <div class="body">${infos.map(i => `<details><summary class="mono">${esc(i.threadName)}</summary><pre class="log small">${esc(i.stringifiedThreadInfo)}</pre></details>`).join('')
      || '<div class="empty">No threads reported.</div>'}</div></div>`;
}
function processTabs(r, base, hrefBase, d) {
  if (r.tab === 'metrics') return metricsTab(r.view, base, d.metrics);
  if (r.tab === 'logs' || r.tab === 'stdout') return null; // rendered by renderLog
  if (r.tab === 'threads') return threadsTab(d.threads);
  return '';
}
// Polling goes on where a second changes the page: metrics, a followed log.
const processAgain = r => r.tab === 'metrics' || ((r.tab === 'logs' || r.tab === 'stdout') && logState.follow);

// ---------- one TaskManager ----------
const TM_TABS = [['metrics', 'Metrics'], ['logs', 'Logs'], ['stdout', 'Stdout'], ['threads', 'Thread Dump']];
views.taskmanager = {
  nav: 'taskmanagers',
  tabs: new Set(TM_TABS.map(t => t[0])),
  async fetch(r) {
    const base = `/taskmanagers/${enc(r.tmid)}`;
    const [tm, rest] = await Promise.all([api(base), fetchProcessTab(r, base, 'taskmanager')]);
    return { tm, ...rest };
  },
  again: processAgain,
  render(r, d) {
    const t = d.tm;
    const base = `/taskmanagers/${enc(r.tmid)}`;
    const href = `#/taskmanagers/${esc(enc(r.tmid))}`;
    const hw = t.hardware || {};
    const used = t.slotsNumber - t.freeSlots;
    setHTML('header', `<h1>TaskManager <span class="mono">${esc(t.id)}</span></h1>
      <div class="summary"><span>Path <b class="mono">${esc(t.path)}</b></span><span>Data port <b>${esc(t.dataPort)}</b></span>
        <span>Slots <b>${used} used / ${t.freeSlots} free</b></span><span>CPU cores <b>${esc(hw.cpuCores ?? '-')}</b></span>
        <span>Physical memory <b>${fmtBytes(hw.physicalMemory)}</b></span><span>PID <b>${esc(t.pid ?? '-')}</b></span>
        <span>Last heartbeat <b>${fmtTime(t.timeSinceLastHeartbeat)}</b></span></div>
      ${tabsHTML(href, TM_TABS, r.tab)}`);
    const html = processTabs(r, base, href, d);
    if (html === null) { renderLog(r, base, href, d); return; }
    setHTML('content', (r.tab === 'metrics' ? memoryCards(t) : '') + html);
  },
};
function kvTable(obj, fmt = v => v) {
  const rows = Object.entries(obj || {}).filter(([, v]) => typeof v !== 'object' || v === null);
  return rows.length ? `<table>${rows.map(([k, v]) => `<tr><td class="mono" style="width:45%">${esc(k)}</td><td class="num">${esc(fmt(v, k))}</td></tr>`).join('')}</table>` : '<div class="empty">None reported.</div>';
}
function memoryCards(t) {
  const m = t.metrics || {};
  const bytes = (v, k) => /count|Count|Segments/.test(k) ? fmtNum(v) : fmtBytes(v);
  const slots = (t.allocatedSlots || []).map((s, i) => `<tr><td class="num">${i}</td><td class="mono"><a href="#/jobs/${esc(s.jobId)}">${esc(s.jobId)}</a></td>
      <td class="num">${fmtNum(s.assignedTasks)}</td><td class="num">${esc(s.resource ? s.resource.cpuCores : '-')}</td></tr>`).join('');
  const gcs = (m.garbageCollectors || []).map(g => `<tr><td>${esc(g.name)}</td><td class="num">${fmtNum(g.count)}</td><td class="num">${fmtDur(g.time)}</td></tr>`).join('');
  return `<div class="grid2">
    ${card('Memory', kvTable(Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'garbageCollectors')), bytes))}
    ${card('Memory Configuration', kvTable(t.memoryConfiguration, bytes))}</div>
    <div class="grid2">${card(`Allocated Slots ${sub(`${(t.allocatedSlots || []).length}`)}`, slots ? `<table><tr><th class="num">#</th><th>Job</th><th class="num">Tasks</th><th class="num">CPU</th></tr>${slots}</table>` : '<div class="empty">No slot is allocated.</div>')}
    ${gcs ? card('Garbage Collectors', `<table><tr><th>Name</th><th class="num">Count</th><th class="num">Time</th></tr>${gcs}</table>`) : card('Hardware', kvTable(t.hardware, bytes))}</div>`;
}

// ---------- the JobManager ----------
const JM_TABS = [['metrics', 'Metrics'], ['configuration', 'Configuration'], ['logs', 'Logs'], ['stdout', 'Stdout'],
  ['environment', 'Environment'], ['threads', 'Thread Dump']];
let configFilter = '';
views.jobmanager = {
  tabs: new Set(JM_TABS.map(t => t[0])),
  async fetch(r) {
    if (r.tab === 'configuration') return { config: await api('/jobmanager/config') };
    if (r.tab === 'environment') return { env: await soft(() => api('/jobmanager/environment'), 'jm-env') };
    return fetchProcessTab(r, '/jobmanager', 'jobmanager');
  },
  again: r => processAgain(r),
  render(r, d, ov) {
    setHTML('header', `<h1>JobManager</h1><div class="sub">${esc(ov['flink-version'])} · REST and web UI at ${esc(location.host)}</div>${tabsHTML('#/jobmanager', JM_TABS, r.tab)}`);
    if (r.tab === 'configuration') return renderConfig(d.config);
    if (r.tab === 'environment') return setHTML('content', envTab(d.env));
    const html = processTabs(r, '/jobmanager', '#/jobmanager', d);
    if (html === null) renderLog(r, '/jobmanager', '#/jobmanager', d);
    else setHTML('content', html);
  },
};
function renderConfig(config) {
  if (!$('cfg-filter')) {
    $('content').__html = null;
    $('content').innerHTML = `<div class="card"><h2>Configuration <span style="width:280px"><input type="text" id="cfg-filter" placeholder="Filter keys or values…" aria-label="Filter the configuration"></span></h2><div class="flush" id="cfg-table"></div></div>`;
    $('cfg-filter').value = configFilter;
    $('cfg-filter').addEventListener('input', e => { configFilter = e.target.value; renderConfig(config); });
  }
  const f = configFilter.trim().toLowerCase();
  const rows = config.slice().sort((a, b) => a.key.localeCompare(b.key))
    .filter(e => !f || e.key.toLowerCase().includes(f) || String(e.value).toLowerCase().includes(f));
  setHTML('cfg-table', rows.length ? `<table><tr><th style="width:40%">Key</th><th>Value</th></tr>` +
    rows.map(e => `<tr><td class="mono">${esc(e.key)}</td><td class="mono">${esc(e.value)}</td></tr>`).join('') + '</table>'
    : '<div class="empty">No matching keys.</div>');
}
// Flink's shape is {jvm: {version, arch, options}, classpath: […]}; flowc
// answers in kind. Any nesting is shown as it comes.
function envTab(env) {
  if (!env || env.error) return emptyCard('Environment', env ? env.error : 'loading…');
  const section = (name, v) => {
    if (Array.isArray(v)) return card(`${esc(name)} ${sub(`${v.length}`)}`, v.length ? `<table>${v.map(x => `<tr><td class="mono">${esc(typeof x === 'object' ? JSON.stringify(x) : x)}</td></tr>`).join('')}</table>` : '<div class="empty">None.</div>');
    if (v && typeof v === 'object') {
      const flat = Object.entries(v).filter(([, x]) => typeof x !== 'object' || x === null);
      const nested = Object.entries(v).filter(([, x]) => x && typeof x === 'object');
      return (flat.length ? card(esc(name), `<table>${flat.map(([k, x]) => `<tr><td class="mono" style="width:30%">${esc(k)}</td><td class="mono">${esc(x)}</td></tr>`).join('')}</table>`) : '') +
        nested.map(([k, x]) => section(`${name} · ${k}`, x)).join('');
    }
    return card(esc(name), `<div class="body mono">${esc(v)}</div>`);
  };
  return Object.entries(env).map(([k, v]) => section(k, v)).join('') || emptyCard('Environment', 'Nothing reported.');
}
