// Runs the web UI's scripts (served by a JobManager at BASE) in Node with a
// stub DOM, at the route HASH, for MS milliseconds; prints what it fetched
// as JSON: {"requests": N, "paths": [...]}. Used by tests/e2e_rest_security.rs
// to count how often the page polls. Usage: node poll_harness.js BASE HASH MS [TOKEN]
'use strict';
const vm = require('vm');
const [base, hash, ms, token] = process.argv.slice(2);

function element() {
  const classes = new Set();
  return new Proxy({
    classList: { add: c => classes.add(c), remove: c => classes.delete(c), toggle: (c, on) => (on ? classes.add(c) : classes.delete(c)), contains: c => classes.has(c) },
    querySelector: () => null,
    querySelectorAll: () => [],
    addEventListener: () => {},
    focus: () => {},
    closest: () => null,
  }, { get: (t, k) => (k in t ? t[k] : undefined), set: (t, k, v) => { t[k] = v; return true; } });
}

(async () => {
  const page = await (await fetch(new URL('/', base))).text();
  // The page's scripts (<script src>), in order, run as one: classic
  // scripts share their global scope as in the browser.
  const sources = [...page.matchAll(/<script src="([^"]+)"><\/script>/g)].map(m => m[1]);
  const script = (await Promise.all(sources.map(async s => (await fetch(new URL(s, base))).text()))).join('\n;\n');
  const elements = {};
  const store = new Map();
  if (token) store.set('flowc.token', token);
  const paths = [];
  const sandbox = {
    console,
    setTimeout, clearTimeout, AbortController, DOMException, URL, JSON, Promise, Date, Math, Number, String, Set, Map, Error, Array, Object,
    fetch: (path, opts) => { paths.push(String(path)); return fetch(new URL(path, base), opts); },
    location: { hash, host: new URL(base).host },
    sessionStorage: { getItem: k => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)), removeItem: k => store.delete(k) },
    document: {
      getElementById: id => (elements[id] = elements[id] || element()),
      addEventListener: () => {},
      querySelectorAll: () => [],
      title: '',
    },
    window: { addEventListener: () => {}, scrollTo: () => {} },
    prompt: () => null,
  };
  sandbox.window.sessionStorage = sandbox.sessionStorage;
  vm.runInNewContext(script, sandbox);
  setTimeout(() => {
    console.log(JSON.stringify({ requests: paths.length, paths, header: String(elements.header && elements.header.__html || ''), content: String(elements.content && elements.content.__html || '') }));
    process.exit(0);
  }, Number(ms));
})().catch(e => { console.error(e); process.exit(2); });
