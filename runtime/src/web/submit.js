// flowc's web UI, part 5 of 6: Submit New Job. Upload a job file (`.flow`)
// or a compiled plan (`.plan`) through Flink's `/jars` endpoints; run one
// with program arguments, parallelism, a savepoint path and
// allow-non-restored-state; delete one. Shown only where `web.submit.enable`
// allows it (`/config`'s `features.web-submit`).
'use strict';

views.submit = {
  async fetch() {
    if (features['web-submit'] === false) return { disabled: true };
    return { jars: await api('/jars') };
  },
  // The list changes only by what this page does, which refreshes it.
  again: () => false,
  render(_, d) {
    setHTML('header', `<h1>Submit New Job</h1><div class="sub">Upload a job file (<code>.flow</code>) or a compiled plan (<code>.plan</code>, from <code>flowc compile</code>), then run it.</div>`);
    if (d.disabled) {
      setHTML('content', '<div class="alert">Job submission is disabled on this cluster (<code>web.submit.enable: false</code>).</div>');
      return;
    }
    if (!$('upload-form')) {
      $('content').__html = null;
      $('content').innerHTML = `<div class="card"><h2>Upload</h2><div class="body">
          <form id="upload-form" class="row">
            <input type="file" id="upload-file" name="jarfile" accept=".flow,.plan" aria-label="Job file or compiled plan">
            <button class="btn primary" type="submit" id="upload-btn">Upload</button>
            <span id="upload-msg" class="muted" role="status"></span></form></div></div>
        <div class="card"><h2>Uploaded Files</h2><div class="flush" id="jar-list"></div></div>`;
    }
    const files = (d.jars.files || []).slice().sort((a, b) => b.uploaded - a.uploaded);
    setHTML('jar-list', files.length ? `<table class="jars"><tr><th>Name</th><th>Uploaded</th><th>ID</th><th></th></tr>` +
      files.map(f => `<tr data-jar="${esc(f.id)}"><td><b>${esc(f.name)}</b></td><td class="nowrap">${fmtTime(f.uploaded)}</td><td class="mono muted">${esc(f.id)}</td>
        <td class="nowrap" style="text-align:right"><button class="btn primary small" data-jar-run="${esc(f.id)}" data-name="${esc(f.name)}">Run…</button>
          <button class="btn danger small" data-jar-delete="${esc(f.id)}" data-name="${esc(f.name)}">Delete</button></td></tr>`).join('') + '</table>'
      : '<div class="empty">No file uploaded yet.</div>');
  },
};

document.addEventListener('submit', async e => {
  if (e.target.id !== 'upload-form') return;
  e.preventDefault();
  const input = $('upload-file');
  const msg = $('upload-msg');
  if (!input.files || !input.files.length) { msg.textContent = 'Choose a .flow or .plan file first.'; return; }
  const form = new FormData();
  form.append('jarfile', input.files[0], input.files[0].name);
  $('upload-btn').disabled = true;
  msg.textContent = 'Uploading…';
  try {
    await api('/jars/upload', { method: 'POST', body: form, signal: null, timeout: 60000 });
    msg.textContent = `Uploaded ${input.files[0].name}.`;
    input.value = '';
  } catch (err) {
    msg.textContent = `Upload failed: ${err.message}`;
  } finally {
    $('upload-btn').disabled = false;
    poll();
  }
});

document.addEventListener('click', e => {
  const run = e.target.closest && e.target.closest('[data-jar-run]');
  if (run) {
    const id = run.dataset.jarRun;
    openModal(`Run ${run.dataset.name}`, `
      <label>Program arguments<input type="text" id="m-args" placeholder="--bootstrap.servers localhost:9092 --checkpointing" autocomplete="off"></label>
      <label>Parallelism<input type="text" id="m-par" inputmode="numeric" placeholder="the job's or the cluster's default" autocomplete="off"></label>
      <label>Savepoint path<input type="text" id="m-sp" placeholder="start from a savepoint or retained checkpoint (optional)" autocomplete="off"></label>
      <label><input type="checkbox" id="m-nonrestored"> Allow non-restored state <span class="muted">(skip savepoint state that maps to no operator)</span></label>`,
    'Submit', false, async () => {
      const body = {};
      const args = $('m-args').value.trim(), par = $('m-par').value.trim(), sp = $('m-sp').value.trim();
      if (args) body.programArgs = args;
      if (par) body.parallelism = par;
      if (sp) body.savepointPath = sp;
      if ($('m-nonrestored').checked) body.allowNonRestoredState = true;
      const r = await api(`/jars/${enc(id)}/run`, { ...jsonPost(body), timeout: 60000 });
      location.hash = `#/jobs/${enc(r.jobid)}`;
    });
    return;
  }
  const del = e.target.closest && e.target.closest('[data-jar-delete]');
  if (del) {
    openModal('Delete the file?', `<p>Delete <b>${esc(del.dataset.name)}</b> (<span class="mono">${esc(del.dataset.jarDelete)}</span>) from the JobManager?</p>`,
      'Delete', true, () => api(`/jars/${enc(del.dataset.jarDelete)}`, { method: 'DELETE', signal: null }));
  }
});
