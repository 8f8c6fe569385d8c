// flowc's web UI, part 1 of 6: what every page uses. Formatting, the REST
// client (Flink's paths and shapes), routing and the registry of views.
// Classic scripts sharing one global scope, loaded in order by index.html:
//   core.js → chart.js → cluster.js → job.js → submit.js → app.js
// No build step and nothing fetched from elsewhere: the JobManager serves
// these files from its own binary.
'use strict';

const POLL_MS = 1000;
const TASK_STATES = ['CREATED', 'SCHEDULED', 'DEPLOYING', 'INITIALIZING', 'RUNNING', 'FINISHED',
  'CANCELING', 'CANCELED', 'FAILED', 'RECONCILING'];
// Flink's web UI palette.
const COLORS = {
  RUNNING: '#52c41a', FAILED: '#f5222d', FAILING: '#f5222d', FINISHED: '#1890ff', CANCELED: '#fa8c16',
  CANCELING: '#faad14', CANCELLING: '#faad14', CREATED: '#2f54eb', DEPLOYING: '#13c2c2', RECONCILING: '#eb2f96',
  IN_PROGRESS: '#faad14', SCHEDULED: '#722ed1', COMPLETED: '#1890ff', RESTARTING: '#13c2c2',
  INITIALIZING: '#738df8', SUSPENDED: '#8c8c8c', PENDING: '#8c8c8c', UNKNOWN: '#8c8c8c',
  OK: '#52c41a', LOW: '#faad14', HIGH: '#f5222d',
};
const TERMINAL = new Set(['FINISHED', 'CANCELED', 'FAILED']);

// ---------- formatting ----------
const $ = id => document.getElementById(id);
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const enc = encodeURIComponent;
const color = s => COLORS[s] || '#8c8c8c';
const pad = n => String(n).padStart(2, '0');
function fmtTime(ms) {
  if (ms == null || ms <= 0) return '-';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
const fmtClock = ms => (ms == null || ms <= 0) ? '-' : fmtTime(ms).slice(11) + '.' + String(Math.floor(ms % 1000)).padStart(3, '0');
function fmtDur(ms) {
  if (ms == null || ms < 0 || Number.isNaN(+ms)) return '-';
  ms = Math.round(+ms);
  if (ms < 1000) return `${ms} ms`;
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(' ');
}
function fmtBytes(b) {
  if (b == null || b === '' || b < 0 || Number.isNaN(+b)) return '-';
  b = +b;
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return `${i ? b.toFixed(b < 10 ? 2 : 1) : b} ${u[i]}`;
}
const fmtNum = n => (n == null || n === '' || n < 0 || Number.isNaN(+n)) ? '-' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 2 });
const fmtPct = r => (r == null || Number.isNaN(+r)) ? '-' : `${Math.round(+r * 100)}%`;
// A watermark as Flink shows it: Long.MIN_VALUE (or none) is "No Watermark".
function fmtWatermark(w) {
  const n = Number(w);
  if (w == null || w === '' || Number.isNaN(n) || n <= -9e15) return 'No Watermark';
  if (n >= 9e15) return 'MAX (end of input)';
  return `${fmtTime(n)}.${String(((n % 1000) + 1000) % 1000).padStart(3, '0')}`;
}
const tag = (s, extra = '') => `<span class="tag" style="color:${color(s)};border-color:${color(s)};background:${color(s)}14"${extra}>${esc(s)}</span>`;
const count = (counts, s) => (counts && (counts[s] ?? counts[s.toLowerCase()])) || 0;
function taskPills(counts) {
  const html = TASK_STATES.filter(s => count(counts, s) > 0)
    .map(s => `<span class="pill" style="background:${color(s)}" title="${s}">${count(counts, s)} ${s}</span>`).join('');
  return html || '<span class="muted">-</span>';
}
// Replaces an element's HTML only when it changed, so open <details>, focus,
// selections and hover states survive the once-a-second refresh.
function setHTML(el, html) {
  if (typeof el === 'string') el = $(el);
  if (el && el.__html !== html) { el.innerHTML = html; el.__html = html; }
}
// Tabs as links; `active` is the current one.
const tabsHTML = (base, tabs, active) => `<div class="tabs" role="tablist">${tabs.map(([id, label]) =>
  `<a href="${base}/${id}" role="tab" aria-selected="${id === active}" class="${id === active ? 'active' : ''}">${label}</a>`).join('')}</div>`;
const card = (title, body, cls = 'flush') => `<div class="card"><h2>${title}</h2><div class="${cls}">${body}</div></div>`;
const emptyCard = (title, text) => card(title, `<div class="empty">${esc(text)}</div>`, 'body');
const sub = s => `<span class="muted" style="font-weight:400">${s}</span>`;

// ---------- REST ----------
// With flowc.security.rest.token set, every API call needs the token: the
// page asks for it on the first 401 and keeps it in this tab's sessionStorage.
const TOKEN_KEY = 'flowc.token';
class NetError extends Error {}
class HttpError extends Error { constructor(msg, status) { super(msg); this.status = status; } }
// An answer of the router's fallback: this JobManager has no such endpoint
// (yet). The page says so rather than asking again every second.
const unserved = new Set();
const isUnserved = e => e instanceof HttpError && e.status === 404 && /^Not found: /.test(e.message);

// The signal of the poll in progress: navigating aborts it, so a page that
// was left sends nothing more.
let pollSignal = null;

async function request(path, opts = {}) {
  const outer = opts.signal === undefined ? pollSignal : opts.signal;
  if (outer && outer.aborted) throw new DOMException('aborted', 'AbortError');
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort();
  if (outer) outer.addEventListener('abort', onAbort);
  const timer = setTimeout(() => ctrl.abort(), opts.timeout || 5000);
  const headers = { ...(opts.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers['Authorization'] = `Bearer ${token}`;
  try {
    return await fetch(path, { cache: 'no-store', method: opts.method, body: opts.body, headers, signal: ctrl.signal });
  } catch (e) {
    if (outer && outer.aborted) throw e;
    throw new NetError(e.name === 'AbortError' ? 'request timed out' : e.message);
  } finally {
    clearTimeout(timer);
    if (outer) outer.removeEventListener('abort', onAbort);
  }
}
async function failure(r, text) {
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  return new HttpError((body && body.errors && body.errors.join('; ')) || `HTTP ${r.status} ${r.statusText}`, r.status);
}
// JSON in, JSON out; a 4xx/5xx throws HttpError with Flink's `errors`.
async function api(path, opts = {}) {
  const r = await request(path, opts);
  const text = await r.text();
  if (!r.ok) throw await failure(r, text);
  try { return text ? JSON.parse(text) : null; } catch (_) { return null; }
}
// A text endpoint (logs, stdout).
async function apiText(path, opts = {}) {
  const r = await request(path, opts);
  const text = await r.text();
  if (!r.ok) throw await failure(r, text);
  return text;
}
// An optional part of a page: a failure other than the network's becomes
// `{error}` for the page to show; an endpoint this JobManager does not serve
// is remembered under `key` and not asked again.
async function soft(p, key) {
  if (key && unserved.has(key)) return { error: 'This JobManager does not serve this view.', unserved: true };
  try {
    return await p();
  } catch (e) {
    if (e instanceof NetError || e.name === 'AbortError') throw e;
    if (key && isUnserved(e)) { unserved.add(key); return { error: 'This JobManager does not serve this view.', unserved: true }; }
    return { error: e.message, status: e.status };
  }
}
const jsonPost = (body, method = 'POST') => ({ method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: null });
// Metric values `[{id, value}]` as a map.
const metricMap = list => Object.fromEntries((Array.isArray(list) ? list : []).map(x => [x.id, x.value]));

// ---------- routing ----------
// Routes live in the hash so that a reload keeps the view:
//   #/overview  #/jobs/running  #/jobs/completed  #/submit
//   #/jobs/<jid>[/<tab>[/<a>[/<b>]]]   (overview/<vertex>/<vertex tab>, checkpoints/<id>/<vertex>)
//   #/taskmanagers  #/taskmanagers/<tmid>[/<tab>[/<file>]]  #/jobmanager[/<tab>[/<file>]]
function parseHash(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(p => { try { return decodeURIComponent(p); } catch (_) { return p; } });
  const [p0, p1, p2, p3, p4] = parts;
  if (p0 === 'jobs' && p1 === 'running') return { view: 'running' };
  if (p0 === 'jobs' && p1 === 'completed') return { view: 'completed' };
  if (p0 === 'jobs' && p1) return { view: 'job', jid: p1, tab: p2 || 'overview', a: p3 || null, b: p4 || null };
  if (p0 === 'taskmanagers' && p1) return { view: 'taskmanager', tmid: p1, tab: p2 || 'metrics', a: p3 || null };
  if (p0 === 'taskmanagers') return { view: 'taskmanagers' };
  if (p0 === 'jobmanager') return { view: 'jobmanager', tab: p1 || 'metrics', a: p2 || null };
  if (p0 === 'submit') return { view: 'submit' };
  if (!p0 || p0 === 'overview') return { view: 'overview' };
  return { view: 'unknown', path: parts.join('/') };
}
// Each view: fetch(route) → data; render(route, data, overview); optional
// again(route, data) → whether another second can change the page;
// optional tabs: the tabs it knows (others stop polling); optional nav.
const views = {};
// What the cluster's switches allow (GET /config), asked once.
let features = {};
