// The test (and demo) HTTP backend: a real node:http server on 127.0.0.1 that renders
// pages per viewer token, so the end-to-end tests can check that Waymark fetched each
// page with the right client's credentials. Control API under /__test/ for the tests.
//
// Usage: node server.mjs [PORTFILE] [--port N] [--host ADDR]   (host default 127.0.0.1)
//   Listens on 127.0.0.1, port N (default 0 = a free port chosen by the kernel).
//   Prints {"port": P} as the first line of stdout; also writes it to PORTFILE if given.
//
// Viewers: "Authorization: Bearer tok-<name>" is viewer <name>; "tok-nobody" is
// forbidden (403) on /users/*; no or another Authorization is 401 there.
// Ownership: odd user ids belong to alice, even ones to bob (so alice owns /users/1 and
// bob /users/2); the owner also sees "email".
//
// Routes (every one of them is counted and logged, except /__test/*):
//   GET /users/:id[?fields=a,b]   JSON {id, name, version, viewer, email?}
//   GET /pages/<anything>         JSON {path, version, viewer}; no auth needed
//   GET /binary[/...]             bytes ff 00 80 followed by 00..fc (256 bytes), octet-stream
//   GET /slow[/...]?ms=N          JSON {path, version, viewer, ms} after N ms (max 60000)
//   GET /big[/...]?bytes=N        N bytes of "x" (max 64 MiB), text/plain
//   GET /status/:code             that status with a small JSON body (3xx has a Location)
//   GET /etag/<anything>          JSON {path, version, viewer} with ETag "v<version>"; a
//                                  request whose If-None-Match names it gets a bodiless 304
//   GET /plain/<anything>         JSON {path, version, viewer}, no validators, and a Date
//                                  that differs on every response (so it never decides
//                                  whether a page changed)
// Control:
//   POST /__test/version {path, version, delay_ms?}  version (and an optional delay
//                                  before answering) of a path (without query string)
//   GET  /__test/requests[?path=P] {count, requests: [{method, url, path, headers, time}]}
//   GET  /__test/wait?path=P&count=N&timeout_ms=T  answers once the backend has seen
//                                  N requests for path P (or at the timeout, 408)
//   POST /__test/reset             clears log, counters, versions and delays
//   GET  /__test/health            200 "ok"
import http from 'node:http';
import fs from 'node:fs';

const OWNERS = (id) => (Number.parseInt(id, 10) % 2 === 1 ? 'alice' : 'bob');
const BINARY = Buffer.from([0xff, 0x00, 0x80, ...Array.from({ length: 253 }, (_, i) => i)]);

const state = {
  count: 0,                 // every non-control request
  log: [],                  // [{method, url, path, headers, time}]
  versions: new Map(),      // path -> version (default 1)
  delays: new Map(),        // path -> ms
  waiters: new Set(),       // pending /__test/wait requests
};

function versionOf(path) {
  return state.versions.has(path) ? state.versions.get(path) : 1;
}

function countFor(path) {
  let n = 0;
  for (const r of state.log) if (r.path === path) n++;
  return n;
}

function wakeWaiters() {
  for (const w of state.waiters) {
    if (countFor(w.path) >= w.count) {
      state.waiters.delete(w);
      clearTimeout(w.timer);
      sendJson(w.res, 200, { path: w.path, count: countFor(w.path) });
    }
  }
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.length,
    ...extraHeaders,
  });
  res.end(body);
}

// Returns the viewer name, null for no/unknown credentials, or "nobody".
function viewerOf(req) {
  const auth = req.headers.authorization || '';
  const m = /^Bearer (tok-[A-Za-z0-9_-]+)$/.exec(auth);
  if (m) return m[1].slice(4);
  // Cookie form, for gateways configured with WAYMARK_AUTH_HEADER "Cookie: sid={token}".
  const c = /(?:^|;\s*)sid=(tok-[A-Za-z0-9_-]+)/.exec(req.headers.cookie || '');
  return c ? c[1].slice(4) : null;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1 << 20) {
        reject(new Error('control body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function control(req, res, url) {
  const route = url.pathname.slice('/__test/'.length);
  if (req.method === 'GET' && route === 'health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  } else if (req.method === 'POST' && route === 'version') {
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return sendJson(res, 400, { error: 'bad json' });
    }
    if (typeof body.path !== 'string') return sendJson(res, 400, { error: 'path required' });
    if (body.version !== undefined) state.versions.set(body.path, body.version);
    if (body.delay_ms !== undefined) state.delays.set(body.path, Number(body.delay_ms) || 0);
    sendJson(res, 200, { path: body.path, version: versionOf(body.path) });
  } else if (req.method === 'GET' && route === 'requests') {
    const p = url.searchParams.get('path');
    const requests = p === null ? state.log : state.log.filter((r) => r.path === p);
    sendJson(res, 200, { count: state.count, requests });
  } else if (req.method === 'GET' && route === 'wait') {
    const path = url.searchParams.get('path') || '';
    const count = Number(url.searchParams.get('count') || 1);
    const timeout = Math.min(Number(url.searchParams.get('timeout_ms') || 10000), 120000);
    if (countFor(path) >= count) return sendJson(res, 200, { path, count: countFor(path) });
    const w = { path, count, res };
    w.timer = setTimeout(() => {
      state.waiters.delete(w);
      sendJson(res, 408, { path, count: countFor(path), wanted: count });
    }, timeout);
    state.waiters.add(w);
    req.on('close', () => {
      if (state.waiters.delete(w)) clearTimeout(w.timer);
    });
  } else if (req.method === 'POST' && route === 'reset') {
    state.count = 0;
    state.log = [];
    state.versions.clear();
    state.delays.clear();
    sendJson(res, 200, { ok: true });
  } else {
    sendJson(res, 404, { error: 'no such control route' });
  }
}

const seqOf = new Map();   // /seq/ path -> fetches so far

// A Date a second later on every response, whatever the wall clock says.
let dateTick = 0;
function nextDate() {
  dateTick++;
  return new Date(Date.UTC(2030, 0, 1) + dateTick * 1000).toUTCString();
}

function page(req, res, url) {
  const path = url.pathname;
  const version = versionOf(path);
  const viewer = viewerOf(req);
  let m;
  if ((m = /^\/users\/([A-Za-z0-9_-]+)$/.exec(path))) {
    if (viewer === null) return sendJson(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
    if (viewer === 'nobody') return sendJson(res, 403, { error: 'forbidden' });
    const id = m[1];
    let user = { id, name: `User ${id}`, version, viewer };
    if (OWNERS(id) === viewer) user.email = `user${id}@example.test`;
    const fields = url.searchParams.get('fields');
    if (fields) {
      const keep = new Set(fields.split(',').concat(['version', 'viewer']));
      user = Object.fromEntries(Object.entries(user).filter(([k]) => keep.has(k)));
    }
    return sendJson(res, 200, user, { etag: `"${id}-${version}"` });
  }
  if (path.startsWith('/pages/')) return sendJson(res, 200, { path, version, viewer });
  // A page that differs on every fetch (a per-path count): for benchmarks that expect
  // an EVENT per bump, which an unchanged page no longer gives.
  if (path.startsWith('/seq/')) {
    const seq = (seqOf.get(path) || 0) + 1;
    seqOf.set(path, seq);
    return sendJson(res, 200, { path, version, viewer, seq });
  }
  if (path.startsWith('/etag/')) {
    const etag = `"v${version}"`;
    const inm = (req.headers['if-none-match'] || '').split(',').map((v) => v.trim());
    if (inm.includes(etag) || inm.includes('*')) {
      res.writeHead(304, { etag, date: nextDate() });
      return res.end();
    }
    return sendJson(res, 200, { path, version, viewer }, { etag, date: nextDate() });
  }
  if (path.startsWith('/plain/')) return sendJson(res, 200, { path, version, viewer }, { date: nextDate() });
  if (path === '/binary' || path.startsWith('/binary/')) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BINARY.length });
    return res.end(BINARY);
  }
  if (path === '/slow' || path.startsWith('/slow/')) {
    const ms = Math.min(Math.max(Number(url.searchParams.get('ms') || 1000), 0), 60000);
    const t = setTimeout(() => sendJson(res, 200, { path, version, viewer, ms }), ms);
    res.on('close', () => clearTimeout(t));
    return undefined;
  }
  if (path === '/big' || path.startsWith('/big/')) {
    const n = Math.min(Math.max(Number(url.searchParams.get('bytes') || 0), 0), 64 << 20);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': n });
    return res.end(Buffer.alloc(n, 'x'));
  }
  if ((m = /^\/status\/([1-5][0-9][0-9])$/.exec(path))) {
    const code = Number(m[1]);
    const extra = code >= 300 && code < 400 ? { location: '/pages/redirected' } : {};
    return sendJson(res, code, { status: code, version }, extra);
  }
  return sendJson(res, 404, { error: 'not found', path });
}

const server = http.createServer((req, res) => {
  let url;
  try {
    url = new URL(req.url, 'http://backend.invalid');
  } catch {
    return sendJson(res, 400, { error: 'bad url' });
  }
  if (url.pathname.startsWith('/__test/')) {
    control(req, res, url).catch((e) => sendJson(res, 500, { error: String(e.message) }));
    return undefined;
  }
  state.count++;
  state.log.push({ method: req.method, url: req.url, path: url.pathname, headers: req.headers, time: Date.now() });
  wakeWaiters();
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'GET only' });
  const delay = state.delays.get(url.pathname) || 0;
  if (delay > 0) {
    const t = setTimeout(() => page(req, res, url), delay);
    res.on('close', () => clearTimeout(t));
    return undefined;
  }
  return page(req, res, url);
});
server.keepAliveTimeout = 30000;

const args = process.argv.slice(2);
let port = 0;
let host = '127.0.0.1';
let portFile = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--host') host = args[++i];
  else portFile = args[i];
}

server.on('error', (e) => {
  process.stderr.write(`backend: cannot listen on ${host}:${port}: ${e.message}\n`);
  process.exit(1);
});
server.listen(port, host, () => {
  const line = JSON.stringify({ port: server.address().port }) + '\n';
  if (portFile) fs.writeFileSync(portFile, line);
  process.stdout.write(line);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
