// flowc's web UI, part 2 of 6: metric charts. The page keeps a rolling
// window of samples per metric while it is open (nothing is stored on the
// JobManager) and draws each as an SVG line chart.
'use strict';

const CHART_WINDOW = 180; // samples kept per metric: 3 minutes at one a second

// Samples by key (`<jid>/<vid>/<metric>`): [[time ms, value], …].
const samples = new Map();
function addSample(key, t, v) {
  const n = Number(v);
  if (v == null || v === '' || !Number.isFinite(n)) return;
  let s = samples.get(key);
  if (!s) samples.set(key, (s = []));
  if (s.length && s[s.length - 1][0] >= t) return;
  s.push([t, n]);
  if (s.length > CHART_WINDOW) s.splice(0, s.length - CHART_WINDOW);
}
const samplesOf = key => samples.get(key) || [];

function fmtAxis(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
  if (a >= 100 || v === Math.round(v)) return String(Math.round(v));
  return v.toFixed(2);
}

// An SVG line chart of `pts` ([[t, v], …]); `data-points` tells how many.
function lineChart(pts, { width = 420, height = 150, stroke = '#1890ff' } = {}) {
  const L = 46, R = 8, T = 8, B = 20;
  const w = width - L - R, h = height - T - B;
  if (!pts.length) {
    return `<svg class="chart" width="${width}" height="${height}" data-points="0" role="img" aria-label="no samples yet">
      <text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="axis">waiting for samples…</text></svg>`;
  }
  const t1 = pts[pts.length - 1][0], t0 = Math.min(pts[0][0], t1 - 60000);
  let lo = Math.min(...pts.map(p => p[1])), hi = Math.max(...pts.map(p => p[1]));
  if (lo > 0 && lo / (hi || 1) > 0.5) lo = lo * 0.9; else lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  const x = t => L + (t - t0) / (t1 - t0 || 1) * w;
  const y = v => T + h - (v - lo) / (hi - lo) * h;
  const line = pts.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const area = `${line} L${x(t1).toFixed(1)},${T + h} L${x(pts[0][0]).toFixed(1)},${T + h} Z`;
  const grid = [0, 0.5, 1].map(f => {
    const v = lo + (hi - lo) * f;
    return `<line x1="${L}" x2="${L + w}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${L - 5}" y="${y(v) + 3.5}" text-anchor="end" class="axis">${fmtAxis(v)}</text>`;
  }).join('');
  const last = pts[pts.length - 1];
  return `<svg class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" data-points="${pts.length}" role="img"
      aria-label="${pts.length} samples, last ${fmtAxis(last[1])}">
    ${grid}
    <text x="${L}" y="${height - 5}" class="axis">${fmtTime(t0).slice(11)}</text>
    <text x="${L + w}" y="${height - 5}" text-anchor="end" class="axis">${fmtTime(t1).slice(11)}</text>
    <path d="${area}" fill="${stroke}" fill-opacity=".08"/>
    <path d="${line}" fill="none" stroke="${stroke}" stroke-width="1.6"/>
    <circle cx="${x(last[0])}" cy="${y(last[1])}" r="2.5" fill="${stroke}"/></svg>`;
}

// ---------- chosen metrics ----------
// Which metrics are charted, per scope ('vertex', 'taskmanager',
// 'jobmanager'), kept in this tab across reloads.
const CHOSEN_KEY = 'flowc.charts';
const chosen = (() => { try { return JSON.parse(sessionStorage.getItem(CHOSEN_KEY) || '{}') || {}; } catch (_) { return {}; } })();
function chosenFor(scope, available, defaults) {
  if (!chosen[scope]) chosen[scope] = defaults.filter(d => available.includes(d)).slice(0, 4);
  return chosen[scope].filter(id => available.includes(id));
}
function choose(scope, id, on) {
  const list = (chosen[scope] = chosen[scope] || []).filter(x => x !== id);
  if (on) list.push(id);
  chosen[scope] = list;
  sessionStorage.setItem(CHOSEN_KEY, JSON.stringify(chosen));
}
// Records one sample of every chosen metric under `prefix`.
function sampleChosen(prefix, values, ids, t = Date.now()) {
  for (const id of ids) addSample(`${prefix}/${id}`, t, values[id]);
}
// The chooser and one chart per chosen metric.
function chartsPanel(scope, prefix, available, ids, values) {
  const options = available.filter(id => !ids.includes(id)).sort()
    .map(id => `<option value="${esc(id)}">${esc(id)}</option>`).join('');
  const charts = ids.map(id => {
    const pts = samplesOf(`${prefix}/${id}`);
    const last = values[id];
    return `<div class="chartbox" data-metric="${esc(id)}"><div class="chart-head"><span class="mono" title="${esc(id)}">${esc(id)}</span>
        <span><b>${esc(last == null ? '-' : fmtNum(last))}</b>
        <button class="btn small" data-chart-remove="${esc(id)}" data-chart-scope="${esc(scope)}" aria-label="Remove the chart of ${esc(id)}">×</button></span></div>
      ${lineChart(pts)}</div>`;
  }).join('');
  return `<div class="chart-tools"><label>Add a metric <select data-chart-scope="${esc(scope)}" aria-label="Add a metric chart">
      <option value="">${available.length ? `choose one of ${available.length}…` : 'no metrics reported'}</option>${options}</select></label>
    <span class="muted">The page keeps the last ${CHART_WINDOW} samples (one a second) while it is open.</span></div>
    <div class="charts">${charts || '<div class="empty">No metric chosen.</div>'}</div>`;
}
document.addEventListener('change', e => {
  const sel = e.target.closest && e.target.closest('select[data-chart-scope]');
  if (sel && sel.value) { choose(sel.dataset.chartScope, sel.value, true); poll(); }
});
document.addEventListener('click', e => {
  const b = e.target.closest && e.target.closest('[data-chart-remove]');
  if (b) { choose(b.dataset.chartScope, b.dataset.chartRemove, false); poll(); }
});
