// flowc's web UI, part 4 of 6: one job. The header (state, actions,
// checkpoint summary), the job graph, the vertex drill-down (subtasks,
// TaskManagers, watermarks, back pressure, metric charts, accumulators and
// "why hasn't my window fired?"), exceptions, checkpoints with per-subtask
// details, the job's and its checkpoints' configuration, and a timeline of
// subtask states.
'use strict';

const JOB_TABS = [['overview', 'Overview'], ['exceptions', 'Exceptions'], ['checkpoints', 'Checkpoints'],
  ['configuration', 'Configuration'], ['timeline', 'Timeline']];
const VERTEX_TABS = [['subtasks', 'Subtasks'], ['taskmanagers', 'TaskManagers'], ['watermarks', 'Watermarks'],
  ['backpressure', 'Back Pressure'], ['metrics', 'Metrics'], ['accumulators', 'Accumulators'], ['lineage', 'Why no window?']];
const VERTEX_CHARTS = ['0.numRecordsInPerSecond', '0.numRecordsOutPerSecond', '0.busyTimeMsPerSecond', '0.backPressuredTimeMsPerSecond'];

// Savepoint operations triggered from this page, per job, kept across reloads.
const ops = (() => { try { return JSON.parse(sessionStorage.getItem('flowc.ops') || '{}') || {}; } catch (_) { return {}; } })();
const saveOps = () => sessionStorage.setItem('flowc.ops', JSON.stringify(ops));
const opsInProgress = jid => (ops[jid] || []).some(o => o.status === 'IN_PROGRESS');
let defaultSavepointDir = null;

views.job = {
  tabs: new Set(JOB_TABS.map(t => t[0])),
  async fetch(r) {
    const jp = `/jobs/${enc(r.jid)}`;
    const [job, exc, metrics] = await Promise.all([
      api(jp),
      soft(() => api(`${jp}/exceptions`)),
      soft(() => api(`${jp}/metrics?get=numRestarts,lastCheckpointSize,lastCheckpointDuration,lastCompletedCheckpointId,lastCheckpointCompletedTimestamp,numberOfCompletedCheckpoints,numberOfFailedCheckpoints`)),
    ]);
    await pollOps(r.jid);
    if (defaultSavepointDir === null) {
      try {
        const cfg = await api('/jobmanager/config');
        defaultSavepointDir = (cfg.find(e => e.key === 'state.savepoints.dir') || {}).value || '';
      } catch (e) { if (e instanceof NetError) throw e; /* asked again next time */ }
    }
    const d = { job, exc, m: metricMap(metrics) };
    if (r.tab === 'overview' && r.a) Object.assign(d, await fetchVertex(r, jp, job));
    if (r.tab === 'checkpoints') {
      d.cps = await soft(() => api(`${jp}/checkpoints`));
      if (r.a) d.detail = await soft(() => api(`${jp}/checkpoints/details/${enc(r.a)}`), 'cp-details');
      if (r.a && r.b) d.cpSubtasks = await soft(() => api(`${jp}/checkpoints/details/${enc(r.a)}/subtasks/${enc(r.b)}`), 'cp-subtasks');
    }
    if (r.tab === 'configuration') {
      [d.config, d.cpConfig] = await Promise.all([soft(() => api(`${jp}/config`)), soft(() => api(`${jp}/checkpoints/config`), 'cp-config')]);
    }
    if (r.tab === 'timeline') d.times = await fetchTimes(jp, job);
    return d;
  },
  // An ended job cannot change: one look, then quiet (unless a savepoint
  // taken from this page is still being awaited).
  again: (r, d) => !TERMINAL.has(d.job.state) || opsInProgress(r.jid),
  render(r, d) {
    const j = d.job;
    const live = !TERMINAL.has(j.state);
    const nExc = d.exc && d.exc.exceptionHistory ? d.exc.exceptionHistory.entries.length : 0;
    const base = `#/jobs/${esc(j.jid)}`;
    const lastId = +d.m.lastCompletedCheckpointId;
    const lastCp = lastId >= 0 && d.m.lastCompletedCheckpointId != null
      ? `#${lastId} · ${fmtBytes(+d.m.lastCheckpointSize)} · ${fmtDur(+d.m.lastCheckpointDuration)} · ${fmtTime(+d.m.lastCheckpointCompletedTimestamp)}`
      : 'none yet';
    const tabs = JOB_TABS.map(([id, label]) => [id, id === 'exceptions' && nExc ? `${label}<span class="n">${nExc}</span>` : label]);
    setHTML('header', `
      <h1>${esc(j.name)} ${tag(j.state)}
        <span class="actions">
          ${features['web-cancel'] === false ? '' : `<button class="btn danger" data-act="cancel" ${live ? '' : 'disabled'}>Cancel Job</button>`}
          <button class="btn" data-act="savepoint" ${j.state === 'RUNNING' ? '' : 'disabled'}>Trigger Savepoint</button>
          <button class="btn" data-act="stop" ${j.state === 'RUNNING' ? '' : 'disabled'}>Stop with Savepoint</button>
        </span></h1>
      <div class="summary">
        <span>Job ID <b class="mono">${esc(j.jid)}</b></span>
        <span>Start <b>${fmtTime(j['start-time'])}</b></span>
        ${j['end-time'] > 0 ? `<span>End <b>${fmtTime(j['end-time'])}</b></span>` : ''}
        <span>Duration <b>${fmtDur(j.duration)}</b></span>
        <span>Restarts <b>${d.m.numRestarts ?? '-'}</b></span>
        <span>Checkpoints <b>${d.m.numberOfCompletedCheckpoints ?? '-'}</b> completed, <b>${d.m.numberOfFailedCheckpoints ?? '-'}</b> failed</span>
        <span>Last checkpoint <b>${lastCp}</b></span>
      </div>
      ${tabsHTML(base, tabs, r.tab)}`);
    let html = renderOps(j.jid);
    if (!live && !opsInProgress(j.jid)) html += `<div class="alert info">The job has ended (${esc(j.state)}); this page no longer refreshes. <button class="btn small" id="look-again">Look again</button></div>`;
    if (r.tab === 'exceptions') html += renderExceptions(d.exc);
    else if (r.tab === 'checkpoints') html += r.a ? renderCheckpointDetail(r, d) : renderCheckpoints(j, d.cps);
    else if (r.tab === 'configuration') html += renderJobConfig(d.config, d.cpConfig);
    else if (r.tab === 'timeline') html += renderTimeline(j, d.times);
    else html += renderJobOverview(r, d);
    setHTML('content', html);
  },
};

async function pollOps(jid) {
  // The status of this job's savepoint operations still in progress.
  await Promise.all((ops[jid] || []).filter(o => o.status === 'IN_PROGRESS').map(async o => {
    try {
      const s = await api(`/jobs/${enc(jid)}/savepoints/${enc(o.tid)}`);
      if (s.status.id === 'COMPLETED') {
        const op = s.operation || {};
        if (op.location) { o.status = 'COMPLETED'; o.location = op.location; }
        else { o.status = 'FAILED'; o.error = (op['failure-cause'] && op['failure-cause']['stack-trace']) || 'failed'; }
        o.done = Date.now();
        saveOps();
      }
    } catch (e) {
      if (e instanceof NetError || e.name === 'AbortError') throw e;
      o.status = 'FAILED'; o.error = e.message; o.done = Date.now(); saveOps();
    }
  }));
}

function renderOps(jid) {
  const list = (ops[jid] || []).slice(-4).reverse();
  return list.map(o => {
    const what = o.kind === 'stop' ? 'Stop with savepoint' : 'Savepoint';
    if (o.status === 'IN_PROGRESS') return `<div class="alert info op" data-op="${esc(o.kind)}">${what} in progress… <span class="muted">(trigger ${esc(o.tid)}, requested ${fmtTime(o.time)})</span></div>`;
    if (o.status === 'COMPLETED') return `<div class="alert ok op" data-op="${esc(o.kind)}">${what} completed at ${fmtTime(o.done)}: <b class="mono savepoint-path">${esc(o.location)}</b></div>`;
    return `<div class="alert op" data-op="${esc(o.kind)}">${what} failed: <span class="mono">${esc(o.error)}</span></div>`;
  }).join('');
}

// ---------- overview: graph, vertices, drill-down ----------
function renderJobOverview(r, d) {
  const j = d.job;
  let html = '';
  const root = d.exc && d.exc['root-exception'];
  if (root) {
    html += `<div class="alert"><b>Root exception</b> at ${fmtTime(d.exc.timestamp)}: <span class="mono">${esc(String(root).split('\n')[0])}</span>
      — <a href="#/jobs/${esc(j.jid)}/exceptions">details</a></div>`;
  }
  const vtab = r.b || 'subtasks';
  const vhref = v => `#/jobs/${esc(j.jid)}/overview/${esc(v.id)}${r.b ? '/' + esc(r.b) : ''}`;
  html += card(`Job Graph ${sub('select a vertex for its subtasks, back pressure, watermarks and metrics')}`, `<div id="graph">${renderGraph(j, r.a, vhref)}</div>`, 'body');
  html += card('Vertices', `<table><tr><th>Name</th><th>Status</th><th class="num">Bytes Received</th><th class="num">Records Received</th>
    <th class="num">Bytes Sent</th><th class="num">Records Sent</th><th class="num">Parallelism</th><th class="num">Duration</th><th>Tasks</th></tr>` +
    j.vertices.map(v => `<tr class="click ${v.id === r.a ? 'sel' : ''}" data-href="${vhref(v)}">
      <td><a href="${vhref(v)}">${esc(v.name)}</a></td><td>${tag(v.status)}</td>
      <td class="num">${fmtBytes(v.metrics['read-bytes'])}</td><td class="num">${fmtNum(v.metrics['read-records'])}</td>
      <td class="num">${fmtBytes(v.metrics['write-bytes'])}</td><td class="num">${fmtNum(v.metrics['write-records'])}</td>
      <td class="num">${v.parallelism}</td><td class="num" title="since ${fmtTime(v['start-time'])}">${fmtDur(v.duration)}</td>
      <td>${taskPills(v.tasks)}</td></tr>`).join('') + '</table>');
  if (r.a) html += renderVertex(r, d, vtab);
  return html;
}

async function fetchVertex(r, jp, job) {
  const vp = `${jp}/vertices/${enc(r.a)}`;
  const tab = r.b || 'subtasks';
  const out = { vertex: await soft(() => api(vp)) };
  const known = job.vertices.some(v => v.id === r.a);
  if (!known || !VERTEX_TABS.some(t => t[0] === tab)) return out;
  if (tab === 'taskmanagers') out.vtms = await soft(() => api(`${vp}/taskmanagers`), 'v-taskmanagers');
  if (tab === 'watermarks') out.watermarks = await soft(() => api(`${vp}/watermarks`), 'v-watermarks');
  if (tab === 'backpressure') out.bp = await soft(() => api(`${vp}/backpressure`), 'v-backpressure');
  if (tab === 'accumulators') {
    [out.acc, out.subAcc] = await Promise.all([soft(() => api(`${vp}/accumulators`), 'v-acc'), soft(() => api(`${vp}/subtasks/accumulators`), 'v-subacc')]);
  }
  if (tab === 'lineage') out.lineage = await soft(() => api(`${vp}/watermark-lineage`), 'v-lineage');
  if (tab === 'metrics') out.vmetrics = await fetchVertexMetrics(r, vp, out.vertex);
  return out;
}

// The vertex's metrics (`/vertices/:vid/metrics`, ids `<subtask>.<name>`),
// or, where this JobManager does not serve them, the counters of the
// vertex's subtasks with rates the page derives from them.
const prevCounters = new Map();
async function fetchVertexMetrics(r, vp, vertex) {
  const prefix = `vertex/${r.jid}/${r.a}`;
  const now = Date.now();
  const list = await soft(() => api(`${vp}/metrics`), 'v-metrics');
  let ids, values = {}, derived = false;
  if (!list.error) {
    ids = list.map(m => m.id);
    const want = chosenFor('vertex', ids, VERTEX_CHARTS);
    if (want.length) values = metricMap(await api(`${vp}/metrics?get=${want.map(enc).join(',')}`));
  } else if (vertex && !vertex.error) {
    derived = true;
    ids = [];
    const names = { numRecordsIn: 'read-records', numRecordsOut: 'write-records', numBytesIn: 'read-bytes', numBytesOut: 'write-bytes' };
    for (const s of vertex.subtasks) {
      for (const [name, field] of Object.entries(names)) {
        const id = `${s.subtask}.${name}`, v = Number(s.metrics[field]);
        ids.push(id, `${id}PerSecond`);
        values[id] = v;
        const key = `${prefix}/${id}`, prev = prevCounters.get(key);
        if (prev && now > prev[0]) values[`${id}PerSecond`] = Math.max(0, (v - prev[1]) * 1000 / (now - prev[0]));
        prevCounters.set(key, [now, v]);
      }
    }
  } else {
    return { error: list.error };
  }
  const charted = chosenFor('vertex', ids, VERTEX_CHARTS);
  sampleChosen(prefix, values, charted, now);
  return { ids, values, charted, derived, prefix };
}

function renderVertex(r, d, vtab) {
  const j = d.job;
  const v = d.vertex;
  const close = `<a href="#/jobs/${esc(j.jid)}/overview">close</a>`;
  if (!j.vertices.some(x => x.id === r.a)) return `<div class="alert">The job has no vertex “${esc(r.a)}”.</div>`;
  if (!v || v.error) return emptyCard(`Vertex ${close}`, v ? v.error : 'loading…');
  const base = `#/jobs/${esc(j.jid)}/overview/${esc(v.id)}`;
  const known = VERTEX_TABS.some(t => t[0] === vtab);
  const body = !known ? `<div class="alert">There is no vertex tab “${esc(vtab)}”.</div>`
    : vtab === 'taskmanagers' ? vertexTaskManagers(d.vtms)
      : vtab === 'watermarks' ? vertexWatermarks(d.watermarks)
        : vtab === 'backpressure' ? vertexBackPressure(d.bp)
          : vtab === 'metrics' ? vertexMetrics(d.vmetrics)
            : vtab === 'accumulators' ? vertexAccumulators(d.acc, d.subAcc)
              : vtab === 'lineage' ? vertexLineage(d.lineage, j)
                : vertexSubtasks(v);
  return `<div class="card" id="vertex"><h2><span>${esc(v.name)} <span class="muted mono" style="font-weight:400">${esc(v.id)}</span>
      ${sub(`parallelism ${v.parallelism}, max ${v.maxParallelism ?? '-'}`)}</span>${close}</h2>
    <div class="body" style="padding-bottom:0">${tabsHTML(base, VERTEX_TABS, vtab)}</div><div class="vbody">${body}</div></div>`;
}

function statusDurations(sd) {
  if (!sd) return '';
  return TASK_STATES.filter(s => sd[s] > 0).map(s => `<span class="muted nowrap" title="time in ${s}">${s.toLowerCase()} ${fmtDur(sd[s])}</span>`).join(' · ');
}
const tmLink = id => id ? `<a class="mono" href="#/taskmanagers/${esc(enc(id))}">${esc(id)}</a>` : '-';
function vertexSubtasks(v) {
  return `<table class="subtasks"><tr><th class="num">#</th><th>Status</th><th class="num">Attempt</th><th>TaskManager</th><th>Start Time</th><th class="num">Duration</th>
    <th class="num">Records Received</th><th class="num">Records Sent</th><th class="num">Bytes Received</th><th class="num">Bytes Sent</th></tr>` +
    v.subtasks.map(s => `<tr><td class="num">${s.subtask}</td><td>${tag(s.status)}</td><td class="num">${s.attempt}</td>
      <td>${tmLink(s['taskmanager-id'])}<div class="muted mono">${esc(s.endpoint || '')}</div></td>
      <td class="nowrap">${fmtTime(s['start-time'])}</td><td class="num">${fmtDur(s.duration)}<div>${statusDurations(s['status-duration'])}</div></td>
      <td class="num">${fmtNum(s.metrics['read-records'])}</td><td class="num">${fmtNum(s.metrics['write-records'])}</td>
      <td class="num">${fmtBytes(s.metrics['read-bytes'])}</td><td class="num">${fmtBytes(s.metrics['write-bytes'])}</td></tr>`).join('') +
    '</table>';
}
function vertexTaskManagers(t) {
  if (!t || t.error) return `<div class="empty">${esc(t ? t.error : 'loading…')}</div>`;
  const tms = t.taskmanagers || [];
  return tms.length ? `<table><tr><th>TaskManager</th><th>Status</th><th>Start Time</th><th class="num">Duration</th><th class="num">Records Received</th>
    <th class="num">Records Sent</th><th class="num">Bytes Received</th><th class="num">Bytes Sent</th><th>Subtasks</th></tr>` +
    tms.map(x => `<tr><td>${tmLink(x['taskmanager-id'])}<div class="muted mono">${esc(x.endpoint)}</div></td><td>${tag(x.status)}</td>
      <td class="nowrap">${fmtTime(x['start-time'])}</td><td class="num">${fmtDur(x.duration)}</td>
      <td class="num">${fmtNum(x.metrics['read-records'])}</td><td class="num">${fmtNum(x.metrics['write-records'])}</td>
      <td class="num">${fmtBytes(x.metrics['read-bytes'])}</td><td class="num">${fmtBytes(x.metrics['write-bytes'])}</td>
      <td>${taskPills(x['status-counts'])}</td></tr>`).join('') + '</table>' : '<div class="empty">No TaskManager runs this vertex.</div>';
}
function vertexWatermarks(w) {
  if (!w || w.error) return `<div class="empty">${esc(w ? w.error : 'loading…')}</div>`;
  const rows = (Array.isArray(w) ? w : []).map(x => ({ sub: parseInt(String(x.id), 10), name: String(x.id).replace(/^\d+\./, ''), value: x.value }))
    .sort((a, b) => a.sub - b.sub);
  return rows.length ? `<table class="watermarks"><tr><th class="num">Subtask</th><th>Metric</th><th>Watermark</th><th class="num">Raw</th></tr>` +
    rows.map(x => `<tr><td class="num">${Number.isNaN(x.sub) ? '-' : x.sub}</td><td class="mono">${esc(x.name)}</td><td class="nowrap">${esc(fmtWatermark(x.value))}</td>
      <td class="num mono muted">${esc(x.value)}</td></tr>`).join('') + '</table>' : '<div class="empty">No watermarks reported.</div>';
}
// Flink's levels: a back-pressured ratio up to 10 % is OK, up to 50 % LOW, above HIGH.
const bpLevel = ratio => ratio <= 0.10 ? 'OK' : ratio <= 0.5 ? 'LOW' : 'HIGH';
function vertexBackPressure(bp) {
  if (!bp || bp.error) return `<div class="empty">${esc(bp ? bp.error : 'loading…')}</div>`;
  if (bp.status && bp.status !== 'ok') return `<div class="empty">Back pressure: ${esc(bp.status)} (sampling); shown once measured.</div>`;
  const subs = bp.subtasks || [];
  const level = String(bp.backpressureLevel || bp['backpressure-level'] || bpLevel(Math.max(0, ...subs.map(s => +s.ratio || 0)))).toUpperCase();
  const bar = s => `<div class="bar wide" title="busy ${fmtPct(s.busyRatio)}, idle ${fmtPct(s.idleRatio)}, back-pressured ${fmtPct(s.ratio)}">
      <span style="width:${100 * (+s.busyRatio || 0)}%;background:#f5222d"></span><span style="width:${100 * (+s.ratio || 0)}%;background:#faad14"></span><span style="width:${100 * (+s.idleRatio || 0)}%;background:#52c41a"></span></div>`;
  return `<div class="body"><span class="summary">Back pressure ${tag(level, ' data-level="' + level + '"')} <span>measured at <b>${fmtTime(bp['end-timestamp'])}</b></span>
      <span class="muted">OK: back-pressured ≤ 10 % of the time · LOW: ≤ 50 % · HIGH: above</span></span></div>
    <table class="backpressure"><tr><th class="num">Subtask</th><th>Level</th><th class="num">Back-pressured</th><th class="num">Idle</th><th class="num">Busy</th><th style="width:35%">busy · back-pressured · idle</th></tr>` +
    subs.map(s => {
      const l = String(s.backpressureLevel || s['backpressure-level'] || bpLevel(+s.ratio || 0)).toUpperCase();
      return `<tr data-subtask="${s.subtask}"><td class="num">${s.subtask}</td><td>${tag(l)}</td><td class="num">${fmtPct(s.ratio)}</td><td class="num">${fmtPct(s.idleRatio)}</td>
        <td class="num">${fmtPct(s.busyRatio)}</td><td>${bar(s)}</td></tr>`;
    }).join('') + '</table>';
}
function vertexMetrics(m) {
  if (!m || m.error) return `<div class="empty">${esc(m ? m.error : 'loading…')}</div>`;
  return `<div class="body">${m.derived ? '<div class="alert info">This JobManager does not serve vertex metrics; the page charts the subtasks\' counters and the rates it derives from them.</div>' : ''}
    ${chartsPanel('vertex', m.prefix, m.ids, m.charted, m.values)}</div>`;
}
function accTable(list) {
  return (list || []).length ? `<table><tr><th>Name</th><th>Type</th><th>Value</th></tr>${list.map(a => `<tr><td class="mono">${esc(a.name)}</td><td>${esc(a.type)}</td><td class="mono">${esc(a.value)}</td></tr>`).join('')}</table>`
    : '<div class="empty">No accumulators.</div>';
}
function vertexAccumulators(acc, subAcc) {
  if (!acc || acc.error) return `<div class="empty">${esc(acc ? acc.error : 'loading…')}</div>`;
  const subs = subAcc && !subAcc.error ? subAcc.subtasks || [] : [];
  return `<div class="body"><b>Vertex</b></div>${accTable(acc['user-accumulators'])}` +
    subs.map(s => `<div class="body"><b>Subtask ${s.subtask}</b> <span class="muted">attempt ${s.attempt} · ${esc(s.endpoint)}</span></div>${accTable(s['user-accumulators'])}`).join('');
}

// "Why hasn't my window fired?": GET /jobs/:jid/vertices/:vid/watermark-lineage
// (flowc's own endpoint; its shape is in docs/REST.md). Per subtask: the
// input watermark, the input holding it back (an upstream subtask's channel
// and, at the end of that chain, the Kafka partition) with its own
// watermark, idleness and lag; the earliest pending window end and how many
// windows wait; late records against the watermark. The page reads:
//   {"subtasks": [{"subtask": 0, "inputWatermark": ms,
//      "pendingWindows": n, "earliestPendingWindowEnd": ms,
//      "lateRecords": n, "lastLateTimestamp": ms, "watermarkAtLastLate": ms,
//      "heldBackBy": {"vertex": vid, "subtask": n, "watermark": ms,
//        "source": {"topic": t, "partition": p, "watermark": ms, "idle": bool, "idleMs": ms, "lag": records}}}],
//    "summary": "one sentence, optional"}
// (kebab-case names are read too).
function vertexLineage(l, job) {
  if (!l || l.error) return `<div class="empty">${esc(l ? l.error : 'loading…')}</div>`;
  const names = Object.fromEntries(job.vertices.map(v => [v.id, v.name]));
  const subs = l.subtasks || [];
  const num = x => (x == null || x === '' ? null : Number(x));
  const rows = subs.map(s => {
    const hb = s.heldBackBy || s['held-back-by'] || null;
    const src = (hb && (hb.source || hb.partition)) || s.source || null;
    const wm = num(s.inputWatermark ?? s['input-watermark']);
    const pending = num(s.pendingWindows ?? s['pending-windows']);
    const earliest = num(s.earliestPendingWindowEnd ?? s['earliest-pending-window-end']);
    const waits = earliest != null && wm != null && earliest > wm ? ` <span class="muted">needs ${fmtDur(earliest - wm)} more</span>` : '';
    const channel = hb ? `${esc(names[hb.vertex] || hb.vertexName || hb.vertex || 'upstream')} #${esc(hb.subtask ?? hb.channel ?? '?')}${hb.watermark != null ? `<div class="muted">at ${esc(fmtWatermark(hb.watermark))}</div>` : ''}` : '<span class="muted">-</span>';
    const part = src ? `<b class="partition" data-topic="${esc(src.topic)}" data-partition="${esc(src.partition)}">${esc(src.topic)}[${esc(src.partition)}]</b>
        <div>${esc(fmtWatermark(src.watermark))}</div>
        <div>${src.idle ? tag('IDLE') : tag('ACTIVE', ' style="color:#52c41a;border-color:#52c41a"')}${src.idleMs != null || src['idle-ms'] != null ? ` <span class="muted">no record for ${fmtDur(src.idleMs ?? src['idle-ms'])}</span>` : ''}</div>
        <div class="muted">lag ${fmtNum(src.lag)} records</div>` : '<span class="muted">-</span>';
    const late = num(s.lateRecords ?? s['late-records']);
    const lastLate = num(s.lastLateTimestamp ?? s['last-late-timestamp']);
    const wmAtLate = num(s.watermarkAtLastLate ?? s['watermark-at-last-late']);
    return `<tr data-subtask="${esc(s.subtask)}"><td class="num">${esc(s.subtask)}</td><td class="nowrap">${esc(fmtWatermark(wm))}</td>
      <td>${channel}</td><td>${part}</td>
      <td class="nowrap">${earliest == null ? '<span class="muted">none</span>' : esc(fmtWatermark(earliest)) + waits}<div class="muted">${pending == null ? '' : `${fmtNum(pending)} window${pending === 1 ? '' : 's'} waiting`}</div></td>
      <td class="num">${fmtNum(late ?? 0)}${lastLate != null ? `<div class="muted">last at ${esc(fmtWatermark(lastLate))}${wmAtLate != null ? `, watermark ${esc(fmtWatermark(wmAtLate))} (${fmtDur(wmAtLate - lastLate)} behind)` : ''}</div>` : ''}</td></tr>`;
  }).join('');
  const verdict = l.summary || l.reason || '';
  return `<div class="body lineage">${verdict ? `<div class="alert info verdict">${esc(verdict)}</div>` : ''}
    <div class="muted">A window fires when its subtask's input watermark passes the window's end. The input watermark is the lowest of the subtask's inputs; the input holding it back is named here, down to its Kafka partition.</div></div>
    <table class="lineage"><tr><th class="num">Subtask</th><th>Input Watermark</th><th>Held Back By</th><th>Source Partition</th><th>Earliest Pending Window End</th><th class="num">Late Records</th></tr>${rows ||
      '<tr><td colspan="6" class="empty">No subtask reported.</td></tr>'}</table>`;
}

// The JobGraph, left to right: vertices placed by their longest path from a
// source, edges from the plan's inputs labelled with their ship strategy.
function wrapName(name, max = 24, lines = 2) {
  const words = String(name).split(/\s+/);
  const out = [];
  let cur = '';
  for (const w of words) {
    if (!cur) cur = w;
    else if ((cur + ' ' + w).length <= max) cur += ' ' + w;
    else { out.push(cur); cur = w; }
  }
  if (cur) out.push(cur);
  const res = out.slice(0, lines).map(l => l.length > max ? l.slice(0, max - 1) + '…' : l);
  if (out.length > lines) res[lines - 1] = res[lines - 1].slice(0, max - 1) + '…';
  return res;
}
function renderGraph(j, selected, href) {
  const verts = j.vertices;
  if (!verts.length) return '<div class="empty">The job has no vertices.</div>';
  const byId = Object.fromEntries(verts.map(v => [v.id, v]));
  const inputs = {};
  for (const n of (j.plan && j.plan.nodes) || []) inputs[n.id] = (n.inputs || []).filter(i => byId[i.id]);
  const level = {}, visiting = new Set();
  const lv = id => {
    if (level[id] != null) return level[id];
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const ins = inputs[id] || [];
    return (level[id] = ins.length ? 1 + Math.max(...ins.map(i => lv(i.id))) : 0);
  };
  verts.forEach(v => lv(v.id));
  const layers = [];
  verts.forEach(v => (layers[level[v.id]] = layers[level[v.id]] || []).push(v));
  const W = 200, H = 138, GX = 104, GY = 28, PX = 12, PY = 14;
  const rows = Math.max(...layers.map(l => (l || []).length));
  const width = PX * 2 + layers.length * W + (layers.length - 1) * GX;
  const height = PY * 2 + rows * H + (rows - 1) * GY;
  const pos = {};
  layers.forEach((l, i) => {
    l = l || [];
    const lh = l.length * H + (l.length - 1) * GY;
    l.forEach((v, k) => { pos[v.id] = { x: PX + i * (W + GX), y: (height - lh) / 2 + k * (H + GY) }; });
  });
  let edges = '', labels = '';
  for (const v of verts) {
    const ins = inputs[v.id] || [];
    ins.forEach((inp, k) => {
      const a = pos[inp.id], b = pos[v.id];
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2 + (k - (ins.length - 1) / 2) * 16;
      const mx = (x1 + x2) / 2;
      const label = String(inp.ship_strategy || '').toUpperCase();
      edges += `<path class="edge" data-from="${esc(inp.id)}" data-to="${esc(v.id)}" data-ship="${esc(label)}" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}" marker-end="url(#arrow)"/>`;
      if (label) {
        const lw = label.length * 6.6 + 10, ly = (y1 + y2) / 2;
        labels += `<rect x="${mx - lw / 2}" y="${ly - 9}" width="${lw}" height="17" rx="3" fill="#fff" stroke="#d9d9d9"/>` +
          `<text class="elabel" x="${mx}" y="${ly + 3.5}" text-anchor="middle">${esc(label)}</text>`;
      }
    });
  }
  let boxes = '';
  for (const v of verts) {
    const { x, y } = pos[v.id];
    const c = color(v.status);
    const name = wrapName(v.name);
    const total = TASK_STATES.reduce((s, st) => s + count(v.tasks, st), 0) || 1;
    let bx = x + 12, bar = '';
    for (const st of TASK_STATES) {
      const n = count(v.tasks, st);
      if (!n) continue;
      const w = (W - 24) * n / total;
      bar += `<rect x="${bx}" y="${y + 73}" width="${w}" height="7" fill="${color(st)}"><title>${n} ${st}</title></rect>`;
      bx += w;
    }
    const counts = TASK_STATES.filter(st => count(v.tasks, st)).map(st => `${count(v.tasks, st)} ${st}`).join(', ');
    const mt = v.metrics || {};
    boxes += `<g class="vx${v.id === selected ? ' sel' : ''}" data-href="${href(v)}" data-vertex="${esc(v.id)}" tabindex="0" role="link" aria-label="${esc(v.name)}, ${esc(v.status)}">
      <title>${esc(v.name)}\n${esc(v.id)}\nTasks: ${esc(counts)}</title>
      <rect class="box" x="${x}" y="${y}" width="${W}" height="${H}" rx="6" fill="#fff" stroke="${v.id === selected ? '#1890ff' : '#d9d9d9'}" stroke-width="${v.id === selected ? 2 : 1}"/>
      <rect x="${x}" y="${y}" width="5" height="${H}" rx="2" fill="${c}"/>
      ${name.map((l, i) => `<text class="name" x="${x + 12}" y="${y + 20 + i * 16}">${esc(l)}</text>`).join('')}
      <rect x="${x + 12}" y="${y + 47}" width="${v.status.length * 8 + 12}" height="17" rx="3" fill="${c}1f" stroke="${c}"/>
      <text x="${x + 18}" y="${y + 59.5}" style="font-size:10.5px;font-weight:600;letter-spacing:.3px;fill:${c}">${esc(v.status)}</text>
      <text x="${x + W - 12}" y="${y + 60}" text-anchor="end">Parallelism: <tspan style="font-weight:600;fill:#262626">${v.parallelism}</tspan></text>
      <rect x="${x + 12}" y="${y + 73}" width="${W - 24}" height="7" fill="#f0f0f0"/>${bar}
      <text x="${x + 12}" y="${y + 103}">In</text><text x="${x + W - 12}" y="${y + 103}" text-anchor="end">${fmtNum(mt['read-records'])} rec · ${fmtBytes(mt['read-bytes'])}</text>
      <text x="${x + 12}" y="${y + 123}">Out</text><text x="${x + W - 12}" y="${y + 123}" text-anchor="end">${fmtNum(mt['write-records'])} rec · ${fmtBytes(mt['write-bytes'])}</text>
    </g>`;
  }
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" style="max-width:100%;height:auto" role="group" aria-label="job graph">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#9aa5b1"/></marker></defs>
    ${edges}${labels}${boxes}</svg>`;
}

// ---------- exceptions ----------
function renderExceptions(exc) {
  if (!exc || exc.error) return emptyCard('Exceptions', exc ? exc.error : 'loading…');
  const entries = (exc.exceptionHistory && exc.exceptionHistory.entries) || [];
  let html = card(`Root Exception ${exc.timestamp ? sub(fmtTime(exc.timestamp)) : ''}`,
    exc['root-exception'] ? `<pre class="trace">${esc(exc['root-exception'])}</pre>` : '<div class="empty">No exceptions: the job has not failed.</div>', 'body');
  html += card(`Exception History ${sub(`${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}${exc.exceptionHistory && exc.exceptionHistory.truncated ? ' (truncated)' : ''}`)}`,
    entries.length ? `<table><tr><th>Time</th><th>Exception</th><th>Task</th><th>Location</th></tr>` +
      entries.map(e => `<tr><td class="nowrap">${fmtTime(e.timestamp)}</td>
        <td><details><summary>${esc(String(e.stacktrace || '').split('\n')[0] || e.exceptionName)}</summary>
          <div class="muted mono" style="margin:6px 0">${esc(e.exceptionName)}</div><pre class="trace">${esc(e.stacktrace)}</pre></details></td>
        <td>${esc(e.taskName || '-')}</td><td class="mono">${esc(e.endpoint || e.taskManagerId || '-')}</td></tr>`).join('') + '</table>'
      : '<div class="empty">No exceptions.</div>');
  return html;
}

// ---------- checkpoints ----------
function renderCheckpoints(j, c) {
  if (!c || c.error) return emptyCard('Checkpoints', c ? c.error : 'loading…');
  const n = c.counts || {};
  const cp = id => `#/jobs/${esc(j.jid)}/checkpoints/${esc(id)}`;
  let html = `<div class="stats">
    <div class="stat"><div class="k">Triggered</div><div class="v">${n.total ?? 0}</div></div>
    <div class="stat"><div class="k">In progress</div><div class="v" style="color:${color('IN_PROGRESS')}">${n.in_progress ?? 0}</div></div>
    <div class="stat"><div class="k">Completed</div><div class="v" style="color:${color('COMPLETED')}">${n.completed ?? 0}</div></div>
    <div class="stat"><div class="k">Failed</div><div class="v" style="color:${color('FAILED')}">${n.failed ?? 0}</div></div>
    <div class="stat"><div class="k">Restored</div><div class="v">${n.restored ?? 0}</div></div></div>`;
  const L = c.latest || {};
  const latestRow = (label, s) => s
    ? `<tr class="click" data-href="${cp(s.id)}"><td class="nowrap">${label}</td><td class="num"><a href="${cp(s.id)}">${s.id}</a></td><td class="nowrap">${fmtTime(s.latest_ack_timestamp)}</td><td class="num">${fmtDur(s.end_to_end_duration)}</td>
        <td class="num">${fmtBytes(s.checkpointed_size)}</td><td class="mono path">${esc(s.external_path || (s.failure_message ? 'failure: ' + s.failure_message : '-'))}</td></tr>`
    : `<tr><td>${label}</td><td colspan="5" class="muted">none</td></tr>`;
  const restored = L.restored
    ? `<tr><td>Restore</td><td class="num">${L.restored.id}</td><td class="nowrap">${fmtTime(L.restored.restore_timestamp)}</td><td class="num">-</td><td class="num">-</td>
        <td class="mono">${esc(L.restored.external_path)}${L.restored.is_savepoint ? ' <span class="muted">(savepoint)</span>' : ''}</td></tr>`
    : `<tr><td>Restore</td><td colspan="5" class="muted">none</td></tr>`;
  html += card('Latest', `<table><tr><th>Kind</th><th class="num">ID</th><th>Completion Time</th><th class="num">End to End Duration</th><th class="num">Checkpointed Size</th><th>Path</th></tr>
    ${latestRow('Completed checkpoint', L.completed)}${latestRow('Savepoint', L.savepoint)}${latestRow('Failed checkpoint', L.failed)}${restored}</table>`);
  const S = c.summary || {};
  const sumRow = (label, s, f) => s ? `<tr><td>${label}</td>${['min', 'avg', 'p50', 'p90', 'p99', 'max'].map(k => `<td class="num">${f(s[k])}</td>`).join('')}</tr>` : '';
  html += card(`Summary ${sub('of completed checkpoints')}`, `<table>
    <tr><th></th><th class="num">Minimum</th><th class="num">Average</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">Maximum</th></tr>
    ${sumRow('Checkpointed data size', S.checkpointed_size, fmtBytes)}${sumRow('End to end duration', S.end_to_end_duration, v => fmtDur(Math.round(v)))}</table>`);
  const hist = c.history || [];
  html += card(`History ${sub('most recent first; select one for its vertices and subtasks')}`,
    hist.length ? `<table class="cp-history"><tr><th class="num">ID</th><th>Status</th><th>Type</th><th>Trigger Time</th><th class="num">End to End Duration</th>
      <th class="num">Checkpointed Size</th><th class="num">Acknowledged</th><th>Path / Failure</th></tr>` +
      hist.map(s => `<tr class="click" data-href="${cp(s.id)}"><td class="num"><a href="${cp(s.id)}">${s.id}</a></td><td>${tag(s.status)}</td><td>${esc(s.checkpoint_type)}</td>
        <td class="nowrap" title="latest acknowledgement ${fmtTime(s.latest_ack_timestamp)}">${fmtTime(s.trigger_timestamp)}</td>
        <td class="num">${fmtDur(s.end_to_end_duration)}</td><td class="num">${fmtBytes(s.checkpointed_size)}</td>
        <td class="num">${s.num_acknowledged_subtasks}/${s.num_subtasks}</td>
        <td class="mono path">${esc(s.failure_message || s.external_path || '-')}</td></tr>`).join('') + '</table>'
      : '<div class="empty">No checkpoint has been triggered yet.</div>');
  return html;
}

function renderCheckpointDetail(r, d) {
  const j = d.job;
  const back = `<a href="#/jobs/${esc(j.jid)}/checkpoints">all checkpoints</a>`;
  const c = d.detail;
  if (!c || c.error) return emptyCard(`Checkpoint ${esc(r.a)} ${back}`, c ? c.error : 'loading…');
  const names = Object.fromEntries(j.vertices.map(v => [v.id, v.name]));
  const order = j.vertices.map(v => v.id).filter(id => c.tasks && c.tasks[id]);
  const vhref = id => `#/jobs/${esc(j.jid)}/checkpoints/${esc(c.id)}/${esc(id)}`;
  let html = `<div class="card"><h2><span>Checkpoint ${esc(c.id)} ${tag(c.status)} ${sub(esc(c.checkpoint_type || ''))}</span>${back}</h2><div class="body"><div class="summary">
      <span>Triggered <b>${fmtTime(c.trigger_timestamp)}</b></span><span>Latest acknowledgement <b>${fmtTime(c.latest_ack_timestamp)}</b></span>
      <span>End to end <b>${fmtDur(c.end_to_end_duration)}</b></span><span>Checkpointed size <b>${fmtBytes(c.checkpointed_size)}</b></span>
      <span>Acknowledged <b>${c.num_acknowledged_subtasks}/${c.num_subtasks}</b></span>
      <span>Path <b class="mono">${esc(c.external_path || c.failure_message || '-')}</b></span></div></div>
    <table class="cp-vertices"><tr><th>Vertex</th><th>Status</th><th>Latest Acknowledgement</th><th class="num">End to End Duration</th><th class="num">Checkpointed Size</th>
      <th class="num">Processed (Alignment)</th><th class="num">Acknowledged</th></tr>` +
    order.map(id => {
      const t = c.tasks[id];
      return `<tr class="click ${id === r.b ? 'sel' : ''}" data-href="${vhref(id)}"><td><a href="${vhref(id)}">${esc(names[id] || id)}</a></td><td>${tag(t.status)}</td>
        <td class="nowrap">${fmtTime(t.latest_ack_timestamp)}</td><td class="num">${fmtDur(t.end_to_end_duration)}</td><td class="num">${fmtBytes(t.checkpointed_size)}</td>
        <td class="num">${fmtBytes(t.processed_data)}</td><td class="num">${t.num_acknowledged_subtasks}/${t.num_subtasks}</td></tr>`;
    }).join('') + '</table></div>';
  if (r.b) html += renderCheckpointSubtasks(names[r.b] || r.b, d.cpSubtasks);
  return html;
}
function renderCheckpointSubtasks(name, s) {
  if (!s || s.error) return emptyCard(`Subtasks of ${esc(name)}`, s ? s.error : 'loading…');
  const subs = s.subtasks || [];
  const sm = s.summary || {};
  const sumRow = (label, x, f) => x ? `<tr><td>${label}</td>${['min', 'avg', 'max'].map(k => `<td class="num">${f(x[k])}</td>`).join('')}</tr>` : '';
  const al = sm.alignment || {}, cd = sm.checkpoint_duration || {};
  return card(`Subtasks of ${esc(name)} ${sub(`checkpoint ${esc(s.id)}`)}`,
    `<table class="cp-summary"><tr><th>Summary</th><th class="num">Minimum</th><th class="num">Average</th><th class="num">Maximum</th></tr>
      ${sumRow('End to end duration', sm.end_to_end_duration, fmtDur)}${sumRow('Checkpointed data size', sm.checkpointed_size, fmtBytes)}
      ${sumRow('Sync duration', cd.sync, fmtDur)}${sumRow('Async duration', cd.async, fmtDur)}
      ${sumRow('Processed during alignment', al.processed, fmtBytes)}${sumRow('Alignment duration', al.duration, fmtDur)}${sumRow('Start delay', sm.start_delay, fmtDur)}</table>
    <table class="cp-subtasks"><tr><th class="num">#</th><th>Status</th><th>Acknowledged</th><th class="num">End to End</th><th class="num">Checkpointed Size</th>
      <th class="num">Sync</th><th class="num">Async</th><th class="num">Processed</th><th class="num">Alignment</th><th class="num">Start Delay</th><th>Unaligned</th></tr>` +
    subs.map(x => {
      const st = x.status || x.className || '-';
      const done = st === 'completed' || x.className === 'completed';
      return `<tr><td class="num">${x.index}</td><td>${tag(String(st).toUpperCase() === 'COMPLETED' ? 'COMPLETED' : String(st).toUpperCase())}</td>
        <td class="nowrap">${done ? fmtTime(x.ack_timestamp) : '-'}</td><td class="num">${fmtDur(x.end_to_end_duration)}</td><td class="num">${fmtBytes(x.checkpointed_size)}</td>
        <td class="num">${fmtDur(x.checkpoint && x.checkpoint.sync)}</td><td class="num">${fmtDur(x.checkpoint && x.checkpoint.async)}</td>
        <td class="num">${fmtBytes(x.alignment && x.alignment.processed)}</td><td class="num">${fmtDur(x.alignment && x.alignment.duration)}</td>
        <td class="num">${fmtDur(x.start_delay)}</td><td>${x.unaligned_checkpoint ? 'yes' : 'no'}</td></tr>`;
    }).join('') + '</table>');
}

// ---------- configuration ----------
function flatRows(obj, prefix = '') {
  return Object.entries(obj || {}).flatMap(([k, v]) => v && typeof v === 'object' && !Array.isArray(v)
    ? flatRows(v, `${prefix}${k}.`) : [[`${prefix}${k}`, Array.isArray(v) ? v.join(', ') : v]]);
}
const rowsTable = rows => rows.length ? `<table>${rows.map(([k, v]) => `<tr><td class="mono" style="width:40%">${esc(k)}</td><td class="mono">${esc(v)}</td></tr>`).join('')}</table>` : '<div class="empty">None.</div>';
function renderJobConfig(c, cp) {
  let html = '';
  if (!c || c.error) html += emptyCard('Job Configuration', c ? c.error : 'loading…');
  else {
    const ec = c['execution-config'] || {};
    html += card('Execution Configuration', rowsTable(flatRows(Object.fromEntries(Object.entries(ec).filter(([k]) => k !== 'user-config')))));
    html += card(`User Configuration ${sub('program arguments and settings of the job')}`, rowsTable(flatRows(ec['user-config'])));
  }
  if (!cp || cp.error) html += emptyCard('Checkpoint Configuration', cp ? cp.error : 'loading…');
  else {
    const durations = new Set(['interval', 'timeout', 'min_pause', 'aligned_checkpoint_timeout', 'changelog_periodic_materialization_interval']);
    html += card('Checkpoint Configuration', rowsTable(flatRows(cp).map(([k, v]) => [k, durations.has(k) && typeof v === 'number' ? `${fmtDur(v)} (${v} ms)` : v])));
  }
  return html;
}

// ---------- timeline of subtask states ----------
// From `/vertices/:vid/subtasktimes` (when each subtask entered each state);
// where it is not served, each subtask's start and end from the vertex.
async function fetchTimes(jp, job) {
  return Promise.all(job.vertices.map(async v => {
    const t = await soft(() => api(`${jp}/vertices/${enc(v.id)}/subtasktimes`), 'v-subtasktimes');
    if (!t.unserved) return t;
    const vd = await soft(() => api(`${jp}/vertices/${enc(v.id)}`));
    if (vd.error) return vd;
    return { id: v.id, name: v.name, now: vd.now, subtasks: vd.subtasks.map(s => ({ subtask: s.subtask, endpoint: s.endpoint,
      timestamps: { [s.status]: 0, ...(s['start-time'] > 0 ? { RUNNING: s['start-time'] } : {}), ...(s['end-time'] > 0 ? { [s.status]: s['end-time'] } : {}) } })) };
  }));
}
function renderTimeline(j, times) {
  const all = (times || []).filter(t => t && !t.error);
  const stamps = all.flatMap(t => t.subtasks.flatMap(s => Object.values(s.timestamps || {}).filter(x => x > 0)));
  if (!stamps.length) return emptyCard('Timeline', (times || []).find(t => t && t.error)?.error || 'No subtask has started yet.');
  const t0 = Math.min(...stamps), end = j['end-time'] > 0 ? j['end-time'] : Math.max(Date.now(), ...stamps);
  const t1 = Math.max(end, t0 + 1000);
  const W = 960, L = 220, R = 12, RH = 16, GAP = 10;
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R);
  let y = 24, body = '';
  for (const t of all) {
    body += `<text x="4" y="${y + 11}" class="tl-vertex">${esc(wrapName(t.name || '', 30, 1)[0])}</text>`;
    y += RH;
    for (const s of t.subtasks) {
      const seq = Object.entries(s.timestamps || {}).filter(([, ts]) => ts > 0).sort((a, b) => a[1] - b[1]);
      body += `<text x="14" y="${y + 11}" class="axis">#${s.subtask}</text>`;
      seq.forEach(([state, ts], i) => {
        const next = i + 1 < seq.length ? seq[i + 1][1] : (TERMINAL.has(state) ? ts : t1);
        const w = Math.max(TERMINAL.has(state) ? 2 : 1, x(next) - x(ts));
        body += `<rect x="${x(ts).toFixed(1)}" y="${y + 2}" width="${w.toFixed(1)}" height="${RH - 4}" fill="${color(state)}" data-state="${state}"><title>subtask ${s.subtask}: ${state} from ${fmtClock(ts)}${i + 1 < seq.length ? ' to ' + fmtClock(next) + ' (' + fmtDur(next - ts) + ')' : ''}</title></rect>`;
      });
      y += RH;
    }
    y += GAP;
  }
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(f => {
    const t = t0 + (t1 - t0) * f;
    return `<line x1="${x(t)}" x2="${x(t)}" y1="18" y2="${y}" class="grid"/><text x="${x(t)}" y="12" text-anchor="${f === 1 ? 'end' : f === 0 ? 'start' : 'middle'}" class="axis">${fmtClock(t)}</text>`;
  }).join('');
  const seen = new Set(all.flatMap(t => t.subtasks.flatMap(s => Object.entries(s.timestamps || {}).filter(([, ts]) => ts > 0).map(([st]) => st))));
  const legend = TASK_STATES.filter(s => seen.has(s)).map(s => `<span class="nowrap"><span class="swatch" style="background:${color(s)}"></span>${s}</span>`).join(' ');
  return card(`Timeline ${sub('when each subtask entered each state')}`, `<div class="legend">${legend}</div>
    <svg class="timeline" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" style="max-width:100%;height:auto" role="img" aria-label="subtask state timeline">${ticks}${body}</svg>`, 'body');
}
