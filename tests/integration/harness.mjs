// End-to-end harness: starts a real redis-server, the test backend and the real Waymark
// daemons on free loopback ports in a temp dir, and drives them with real WAMP clients
// (Autobahn|JS; Autobahn|Python where installed). Every wait has a deadline; nothing sleeps to "let things settle".
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';
import autobahn from 'autobahn';
import msgpack5 from 'msgpack5';
import WebSocket from 'ws';

// Autobahn|JS warns on stderr about every closed connection ("connection closed",
// "auto-reconnect disabled!"), which the tests do on purpose all the time. Its log module
// is looked up at call time, so route those lines to WAYMARK_TEST_VERBOSE only.
const abLog = createRequire(import.meta.url)('autobahn/lib/log.js');
abLog.warn = process.env.WAYMARK_TEST_VERBOSE ? console.warn.bind(console) : () => {};

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const BUILD = path.resolve(ROOT, process.env.WAYMARK_BUILD || 'build');
const BACKEND = path.join(ROOT, 'tests', 'backend', 'server.mjs');
export const REALM = 'waymark';
export const CHANNEL = 'waymark';

// Optional command the C daemons (never redis or the backend) run under, e.g. for
// `make valgrind`: WAYMARK_DAEMON_WRAPPER="valgrind -q --error-exitcode=99
// --log-file={dir}/{name}.%p.valgrind.log". Words split on whitespace (no shell quoting);
// {dir} becomes the stack's temp dir and {name} the process name, so each daemon writes
// its own log, which shutdownProblems() reports when it is not empty.
const WRAPPER = (process.env.WAYMARK_DAEMON_WRAPPER || '').split(/\s+/).filter(Boolean);
// Multiplier for the harness's own deadlines (readiness, stop grace, default waits):
// a daemon under valgrind starts and answers 10-30x slower. Default 1, or 5 with a wrapper.
export const TIMEOUT_SCALE = process.env.WAYMARK_TIMEOUT_SCALE
  ? Number(process.env.WAYMARK_TIMEOUT_SCALE) : (WRAPPER.length ? 5 : 1);
if (!(TIMEOUT_SCALE > 0)) throw new Error(`bad WAYMARK_TIMEOUT_SCALE ${process.env.WAYMARK_TIMEOUT_SCALE}`);
export function scaled(ms) {
  return Math.round(ms * TIMEOUT_SCALE);
}
const STOP_GRACE_MS = scaled(5000);

// Every child and temp dir of every stack, so that a test file that crashes or is stopped
// by the test runner (SIGTERM on its timeout) still leaves nothing behind.
const allChildren = new Set();
const allDirs = new Set();
function killEverything() {
  for (const c of allChildren) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const d of allDirs) {
    if (!process.env.WAYMARK_KEEP_TMP) fs.rmSync(d, { recursive: true, force: true });
  }
}
process.on('exit', killEverything);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.once(sig, () => {
    killEverything();
    process.exit(128 + os.constants.signals[sig]);
  });
}

// Ports handed out in this test process: two stacks never get the same one even
// though the probe socket is closed before the daemon binds it.
const handedOut = new Set();
export async function freePort() {
  for (let i = 0; i < 50; i++) {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address();
    srv.close();
    await once(srv, 'close');
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found');
}

// Resolves when predicate() is truthy, re-checking whenever one of the emitters emits
// 'change'. Rejects after timeoutMs with the label, so a failing test says what it awaited.
export function waitFor(predicate, timeoutMs = scaled(5000), emitters = [], label = 'condition') {
  return new Promise((resolve, reject) => {
    let timer = null;
    const check = () => {
      let v;
      try {
        v = predicate();
      } catch (e) {
        done();
        reject(e);
        return;
      }
      if (v) {
        done();
        resolve(v);
      }
    };
    const done = () => {
      clearTimeout(timer);
      for (const e of emitters) e.off('change', check);
    };
    for (const e of emitters) e.on('change', check);
    timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`));
    }, timeoutMs);
    check();
  });
}

// Retries an async probe with a short pause between attempts until it returns a truthy
// value or the deadline passes: for readiness of things that cannot notify us.
export async function poll(probe, timeoutMs, label, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}${last ? `: ${last.message}` : ''}`);
    }
    await delay(intervalMs);
  }
}

async function httpGet(url, timeoutMs = scaled(2000)) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

// One RESP command over a plain socket (readiness probes only; bumps use the real CLIs).
function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const end = (v) => { s.destroy(); resolve(v); };
    s.setTimeout(1000, () => end(false));
    s.on('error', () => end(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { buf += d; if (buf.includes('\r\n')) end(buf.startsWith('+PONG')); });
  });
}

function tcpAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

// A child process whose stdout and stderr go to DIR/NAME.log (appended across restarts).
// wrap: a Waymark daemon, started under WAYMARK_DAEMON_WRAPPER when that is set.
class Proc {
  constructor(stack, name, cmd, args, env, wrap = false) {
    Object.assign(this, { stack, name, cmd, args, env, wrap });
    this.logFile = path.join(stack.dir, `${name}.log`);
    this.child = null;
    this.exited = null;
  }

  start() {
    if (this.child) throw new Error(`${this.name} already running`);
    const fd = fs.openSync(this.logFile, 'a');
    let [cmd, args] = [this.cmd, this.args];
    if (this.wrap && WRAPPER.length) {
      const subst = (w) => w.replaceAll('{dir}', this.stack.dir).replaceAll('{name}', this.name);
      [cmd, args] = [WRAPPER[0], [...WRAPPER.slice(1).map(subst), this.cmd, ...this.args]];
    }
    const child = spawn(cmd, args, {
      cwd: this.stack.dir,
      env: this.env,
      stdio: ['ignore', this.name === 'backend' ? 'pipe' : fd, fd],
    });
    fs.closeSync(fd);
    allChildren.add(child);
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        allChildren.delete(child);
        if (this.child === child) this.child = null;
        this.exitStatus = { code, signal };
        resolve({ code, signal });
      });
      child.on('error', (e) => {
        allChildren.delete(child);
        if (this.child === child) this.child = null;
        this.exitStatus = { code: null, signal: null, error: e };
        resolve(this.exitStatus);
      });
    });
    return child;
  }

  get running() { return this.child !== null; }

  async kill(signal = 'SIGKILL') {
    if (!this.child) return this.exitStatus;
    const exited = this.exited;
    this.child.kill(signal);
    return exited;
  }

  // SIGTERM, then SIGKILL after a grace period.
  async stop() {
    if (!this.child) return this.exitStatus;
    const exited = this.exited;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child && this.child.kill('SIGKILL'), STOP_GRACE_MS);
    const st = await exited;
    clearTimeout(t);
    return st;
  }

  log() {
    try { return fs.readFileSync(this.logFile, 'utf8'); } catch { return ''; }
  }

  tail(n = 30) {
    return this.log().trimEnd().split('\n').slice(-n).join('\n');
  }
}

// A whole Waymark deployment on loopback: redis, backend, dispatcher, gateway, N fetchers.
export class Stack {
  constructor(opts = {}) {
    // gateways > 1: every fetcher connects to every gateway (comma-separated list).
    this.opts = { fetchers: 2, gateways: 1, extraEnv: {}, backendUrl: null, ...opts };
    this.procs = new Map();
    this.sessions = new Set();
    this.dir = null;
  }

  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waymark-it-'));
    allDirs.add(this.dir);
    try {
      await this.#start();
    } catch (e) {
      const tails = [...this.procs.values()]
        .map((p) => `--- ${p.name} (${p.running ? 'running' : `exited ${JSON.stringify(p.exitStatus)}`})\n${p.tail(15)}`)
        .join('\n');
      await this.stop();
      throw new Error(`${e.message}\n${tails}`);
    }
    return this;
  }

  async #start() {
    const ports = {
      redis: await freePort(),
      ws: await freePort(),
      bump: await freePort(),
      fetch: await freePort(),
      mDispatcher: await freePort(),
      mGateway: await freePort(),
    };
    this.ports = ports;

    // Redis: private, no persistence, data dir in the temp dir.
    const redisDir = path.join(this.dir, 'redis');
    fs.mkdirSync(redisDir);
    this.#add('redis', 'redis-server', [
      '--port', String(ports.redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', redisDir, '--daemonize', 'no', '--loglevel', 'notice',
    ], process.env);
    await this.startProc('redis');

    // Backend: prints {"port": P} first.
    this.#add('backend', process.execPath, [BACKEND], process.env);
    await this.startProc('backend');

    const base = {
      ...process.env,
      WAYMARK_BACKEND_URL: this.opts.backendUrl || this.backendUrl,
      WAYMARK_REDIS_URL: `redis://127.0.0.1:${ports.redis}`,
      WAYMARK_REDIS_CHANNEL: CHANNEL,
      WAYMARK_LISTEN: `127.0.0.1:${ports.ws}`,
      WAYMARK_REALM: REALM,
      WAYMARK_BUMP_ENDPOINT: `tcp://127.0.0.1:${ports.bump}`,
      WAYMARK_FETCH_ENDPOINT: `tcp://127.0.0.1:${ports.fetch}`,
      WAYMARK_LOG_LEVEL: 'debug',
      ...this.opts.extraEnv,
    };
    this.env = base;
    this.#add('dispatcher', path.join(BUILD, 'waymark-dispatcher'), [],
      { ...base, WAYMARK_METRICS_LISTEN: `127.0.0.1:${ports.mDispatcher}` }, true);
    this.metricsPorts = { dispatcher: ports.mDispatcher, gateway: ports.mGateway };
    // Gateway "gateway" uses ports.ws/fetch/mGateway; "gateway2", ... get their own.
    this.gatewayPorts = { gateway: { ws: ports.ws, fetch: ports.fetch } };
    for (let i = 2; i <= this.opts.gateways; i++) {
      this.gatewayPorts[`gateway${i}`] = { ws: await freePort(), fetch: await freePort() };
      this.metricsPorts[`gateway${i}`] = await freePort();
    }
    for (const [name, gp] of Object.entries(this.gatewayPorts)) {
      this.#add(name, path.join(BUILD, 'waymark-gateway'), [], {
        ...base,
        WAYMARK_LISTEN: `127.0.0.1:${gp.ws}`,
        WAYMARK_FETCH_ENDPOINT: `tcp://127.0.0.1:${gp.fetch}`,
        WAYMARK_METRICS_LISTEN: `127.0.0.1:${this.metricsPorts[name]}`,
      }, true);
    }
    const fetchEndpoints = Object.values(this.gatewayPorts).map((gp) => `tcp://127.0.0.1:${gp.fetch}`).join(',');
    for (let i = 1; i <= this.opts.fetchers; i++) {
      const mp = await freePort();
      this.metricsPorts[`fetcher${i}`] = mp;
      this.#add(`fetcher${i}`, path.join(BUILD, 'waymark-fetcher'), [],
        { ...base, WAYMARK_FETCH_ENDPOINT: fetchEndpoints, WAYMARK_METRICS_LISTEN: `127.0.0.1:${mp}` }, true);
    }
    await Promise.all(['dispatcher', ...this.gatewayNames, ...this.fetcherNames].map((n) => this.startProc(n)));
    await this.waitHealthy();
    await this.waitPipeline();
  }

  get fetcherNames() {
    return [...this.procs.keys()].filter((n) => n.startsWith('fetcher'));
  }

  get gatewayNames() {
    return [...this.procs.keys()].filter((n) => n.startsWith('gateway'));
  }

  get wsUrl() { return `ws://127.0.0.1:${this.ports.ws}/`; }

  wsUrlOf(gateway = 'gateway') { return `ws://127.0.0.1:${this.gatewayPorts[gateway].ws}/`; }

  #add(name, cmd, args, env, wrap = false) {
    this.procs.set(name, new Proc(this, name, cmd, args, env, wrap));
  }

  proc(name) {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process ${name}`);
    return p;
  }

  // Starts (or restarts) one process and waits until it is ready.
  async startProc(name, timeoutMs = scaled(10000)) {
    const p = this.proc(name);
    const child = p.start();
    const died = p.exited.then((st) => {
      throw new Error(`${name} exited during startup: ${JSON.stringify(st)}`);
    });
    died.catch(() => {});
    let ready;
    if (name === 'redis') {
      ready = poll(() => redisPing(this.ports.redis), timeoutMs, 'redis PING');
    } else if (name === 'backend') {
      ready = new Promise((resolve, reject) => {
        let buf = '';
        const onData = (d) => {
          buf += d;
          const nl = buf.indexOf('\n');
          if (nl >= 0) {
            child.stdout.off('data', onData);
            try {
              this.backendPort = JSON.parse(buf.slice(0, nl)).port;
              resolve(true);
            } catch (e) {
              reject(e);
            }
          }
        };
        child.stdout.on('data', onData);
        child.stdout.on('end', () => reject(new Error('backend closed stdout')));
      });
    } else {
      // Any HTTP answer on /healthz: the process is up and its loop is running.
      ready = poll(async () => (await httpGet(this.metricsUrl(name, '/healthz'))).status > 0,
        timeoutMs, `${name} /healthz`);
      if (name.startsWith('gateway')) {
        const wsPort = this.gatewayPorts[name].ws;
        ready = ready.then(() => poll(() => tcpAccepts(wsPort), timeoutMs, `${name} websocket port`));
      }
    }
    await Promise.race([ready, died]);
  }

  // Every daemon's /healthz answers 200 (links up) within the deadline.
  async waitHealthy(timeoutMs = scaled(15000)) {
    const names = ['dispatcher', ...this.gatewayNames, ...this.fetcherNames].filter((n) => this.proc(n).running);
    await Promise.all(names.map((n) => poll(async () => {
      const r = await httpGet(this.metricsUrl(n, '/healthz'));
      if (r.status !== 200) throw new Error(`status ${r.status} ${r.text.trim()}`);
      return true;
    }, timeoutMs, `${n} /healthz 200`)));
  }

  // End-to-end readiness: a bump reaches a subscribed session. ZeroMQ PUB/SUB drops what
  // is published before the subscription propagates, so re-bump until one arrives.
  async waitPipeline(timeoutMs = scaled(15000)) {
    for (const g of this.gatewayNames) await this.#waitPipelineOf(g, timeoutMs);
  }

  async #waitPipelineOf(gateway, timeoutMs) {
    const s = await this.connect({ token: 'tok-probe', gateway });
    try {
      const sub = await s.subscribe('/pages/__ready');
      await poll(async () => {
        await this.publish('/pages/__ready');
        try {
          await sub.waitEvent(() => true, scaled(250));
          return true;
        } catch {
          return false;
        }
      }, timeoutMs, 'a bump to reach a session', 0);
    } finally {
      await s.close();
    }
  }

  get backendUrl() { return `http://127.0.0.1:${this.backendPort}`; }

  metricsUrl(name, p = '/metrics') {
    return `http://127.0.0.1:${this.metricsPorts[name]}${p}`;
  }

  async metrics(name) {
    const r = await httpGet(this.metricsUrl(name));
    if (r.status !== 200) throw new Error(`${name} /metrics: status ${r.status}`);
    return { text: r.text, values: parseMetrics(r.text), contentType: r.headers.get('content-type') };
  }

  async restart(name) {
    await this.proc(name).stop();
    await this.startProc(name);
  }

  // ---- bumps ----

  // Bump with the project's CLI: waymark-bump PATH.
  bumpCli(topic, args = []) {
    const r = spawnSync(path.join(BUILD, 'waymark-bump'), [...args, topic], {
      env: this.env, encoding: 'utf8', timeout: scaled(10000),
    });
    if (r.status !== 0) throw new Error(`waymark-bump ${topic} failed (${r.status}): ${r.stderr}`);
    return r;
  }

  // Bump as a backend does: PUBLISH on the channel with redis-cli. payload is a path or
  // an object (sent as JSON). Resolves with the number of receivers Redis reported.
  async publish(payload) {
    const msg = typeof payload === 'string' ? payload : JSON.stringify(payload);
    const out = await this.redisCli(['PUBLISH', CHANNEL, msg]);
    return Number(out.trim());
  }

  redisCli(args, input = null) {
    return new Promise((resolve, reject) => {
      const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(this.ports.redis), ...args], {
        stdio: [input === null ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      const t = setTimeout(() => child.kill('SIGKILL'), 20000);
      child.on('exit', (code) => {
        clearTimeout(t);
        if (code === 0) resolve(out);
        else reject(new Error(`redis-cli ${args.join(' ')}: exit ${code} ${err}`));
      });
      if (input !== null) child.stdin.end(input);
    });
  }

  // A long-lived redis-cli reading commands from stdin, one reply line per command, for
  // publishing many bumps in order without a process per bump.
  publisher() {
    const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(this.ports.redis)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    allChildren.add(child);
    const replies = new EventEmitter();
    let buf = '';
    let n = 0;
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        buf = buf.slice(i + 1);
        n++;
        replies.emit('change');
      }
    });
    let sent = 0;
    return {
      publish(payload) {
        const msg = typeof payload === 'string' ? payload : JSON.stringify(payload);
        child.stdin.write(`PUBLISH ${CHANNEL} ${JSON.stringify(msg)}\n`);
        sent++;
      },
      // Resolves once Redis answered every command sent so far.
      flush(timeoutMs = 10000) {
        return waitFor(() => n >= sent, timeoutMs, [replies], 'redis-cli replies');
      },
      async close() {
        child.stdin.end();
        const st = child.exitCode !== null ? null : once(child, 'exit');
        await st;
        allChildren.delete(child);
      },
    };
  }

  // ---- the backend's control API ----

  async backend(method, p, body) {
    const res = await fetch(`${this.backendUrl}/__test/${p}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(130000),
    });
    return { status: res.status, body: await res.json() };
  }

  async setVersion(p, version, extra = {}) {
    const r = await this.backend('POST', 'version', { path: p, version, ...extra });
    if (r.status !== 200) throw new Error(`setVersion: ${JSON.stringify(r.body)}`);
  }

  // Requests the backend saw, optionally only for one path (without query string).
  async requests(p) {
    const q = p === undefined ? '' : `?path=${encodeURIComponent(p)}`;
    return (await this.backend('GET', `requests${q}`)).body.requests;
  }

  // Resolves once the backend has seen count requests for path p (it answers when they arrive).
  async waitRequests(p, count, timeoutMs = scaled(10000)) {
    const r = await this.backend('GET',
      `wait?path=${encodeURIComponent(p)}&count=${count}&timeout_ms=${timeoutMs}`);
    if (r.status !== 200) {
      throw new Error(`backend saw ${r.body.count} requests for ${p}, wanted ${count} within ${timeoutMs} ms`);
    }
    return r.body.count;
  }

  // ---- WAMP sessions ----

  // opts: see connectAutobahn, plus gateway: which gateway to connect to (default "gateway").
  connect(opts = {}) {
    return connectAutobahn(this.wsUrlOf(opts.gateway), opts).then((s) => {
      this.sessions.add(s);
      s.closed.then(() => this.sessions.delete(s));
      return s;
    });
  }

  // Every log file of this stack, by name.
  logs() {
    const out = {};
    if (!this.dir || !fs.existsSync(this.dir)) return out;
    for (const f of fs.readdirSync(this.dir)) {
      if (f.endsWith('.log')) out[f] = fs.readFileSync(path.join(this.dir, f), 'utf8');
    }
    return out;
  }

  // Stops sessions and every process (SIGTERM, then SIGKILL), removes the temp dir.
  // Safe to call twice and after a failed start. Returns the logs it found.
  async stop({ keepDir = false } = {}) {
    await Promise.allSettled([...this.sessions].map((s) => s.close()));
    const order = [...this.gatewayNames, ...this.fetcherNames, 'dispatcher', 'backend', 'redis'];
    const results = {};
    await Promise.all(order.filter((n) => this.procs.has(n)).map(async (n) => {
      results[n] = await this.proc(n).stop();
    }));
    const logs = this.logs();
    if (this.dir && !keepDir && !process.env.WAYMARK_KEEP_TMP) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
    allDirs.delete(this.dir);
    return { logs, results };
  }
}

export async function startStack(opts) {
  return new Stack(opts).start();
}

// The stack the tests of one describe() block share: started in a before hook and handed
// to set(), stopped in an after hook (stop() is safe twice, so a last test may stop it
// itself to look at the shutdown). With check, the after hook asserts assertCleanStop.
export function shareStack(set, { stackOpts, startTimeoutMs = 60000, check = false } = {}) {
  let stack = null;
  before(async () => {
    stack = await startStack(stackOpts);
    set(stack);
  }, { timeout: startTimeoutMs });
  after(async () => {
    if (!stack) return;
    const stopped = await stack.stop();
    if (check) assertCleanStop(stopped);
  }, { timeout: 30000 });
}

// What stop() returned shows every daemon exiting cleanly and no token in any log line.
export function assertCleanStop(stopped) {
  assert.deepEqual(shutdownProblems(stopped), [], 'every daemon exits cleanly, no sanitizer report');
  assert.deepEqual(findTokens(stopped.logs), [], 'no token in any log line');
}

// Runs fn with a stack of its own and always tears it down; when fn passed, every
// daemon must have stopped cleanly and no log may carry a token.
export async function withStack(opts, fn) {
  const stack = await startStack(opts);
  let ok = false;
  try {
    await fn(stack);
    ok = true;
  } finally {
    const stopped = await stack.stop();
    if (ok) {
      const problems = shutdownProblems(stopped);
      if (problems.length) throw new Error(`unclean shutdown: ${JSON.stringify(problems)}`);
      const tokens = findTokens(stopped.logs);
      if (tokens.length) throw new Error(`tokens in logs: ${JSON.stringify(tokens)}`);
    }
  }
}

// Prometheus text -> Map(name{labels} -> number).
export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const key = line.slice(0, sp).trim();
    const v = Number(line.slice(sp + 1));
    if (key && !Number.isNaN(v)) m.set(key, v);
  }
  return m;
}

// Sum of every sample whose name (before '{') matches re.
export function metricSum(values, re) {
  let sum = 0;
  for (const [k, v] of values) if (re.test(k.split('{')[0])) sum += v;
  return sum;
}

// ---- a raw WAMP client: sends exactly the bytes a test wants ----

const mp = msgpack5();

// Every message received goes to msgs, in order (binary[i] says whether msgs[i] came in
// a binary frame); closeInfo says how the socket closed. transform(m) may replace what
// is kept of a message (e.g. only the length of a big body).
export class RawWamp {
  constructor(url, protocols, { transform = (m) => m, ...wsOpts } = {}) {
    this.ser = protocols && protocols[0] === 'wamp.2.msgpack' ? 'msgpack' : 'json';
    this.msgs = [];
    this.binary = [];
    this.closeInfo = null;
    this.emitter = new EventEmitter();
    this.emitter.setMaxListeners(100);
    this.ws = new WebSocket(url, protocols, { handshakeTimeout: 5000, ...wsOpts });
    this.ws.on('message', (data, binaryFlag) => {
      // ws 7 (autobahn's) hands text frames over as strings, ws 8 passes a flag.
      const isBinary = typeof binaryFlag === 'boolean' ? binaryFlag : typeof data !== 'string';
      let m;
      try {
        m = this.ser === 'msgpack' ? mp.decode(Buffer.from(data)) : JSON.parse(data.toString('utf8'));
      } catch (e) {
        m = { undecodable: String(e) };
      }
      this.msgs.push(transform(m));
      this.binary.push(isBinary);
      this.emitter.emit('change');
    });
    this.ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: String(reason), at: Date.now() };
      this.emitter.emit('change');
    });
    this.ws.on('error', (e) => {
      this.error = e;
      this.emitter.emit('change');
    });
  }

  // Resolves with the time the handshake completed; rejects when the server refused it.
  opened(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('websocket open timed out')), timeoutMs);
      this.ws.once('open', () => { clearTimeout(t); resolve(Date.now()); });
      this.ws.once('error', (e) => { clearTimeout(t); reject(e); });
      this.ws.once('unexpected-response', (req, res) => {
        clearTimeout(t);
        reject(Object.assign(new Error(`handshake refused: HTTP ${res.statusCode}`), { status: res.statusCode }));
      });
    });
  }

  encode(msg) { return this.ser === 'msgpack' ? mp.encode(msg).slice() : JSON.stringify(msg); }

  send(msg) { this.ws.send(this.encode(msg), { binary: this.ser === 'msgpack' }); }

  sendRaw(data, opts = {}) { this.ws.send(data, opts); }

  waitMsg(pred, timeoutMs = 5000, label = 'a WAMP message') {
    return waitFor(() => this.msgs.find((m) => pred(m)), timeoutMs, [this.emitter], label);
  }

  indexOf(pred) { return this.msgs.findIndex((m) => pred(m)); }

  waitClose(timeoutMs = 5000) {
    return waitFor(() => this.closeInfo, timeoutMs, [this.emitter], 'the websocket to close');
  }

  // HELLO (ticket) -> CHALLENGE -> AUTHENTICATE -> WELCOME.
  async join(token = 'tok-alice', details = {}) {
    this.send([1, REALM, { authmethods: ['ticket'], roles: { subscriber: {} }, ...details }]);
    await this.waitMsg((m) => m[0] === 4, 5000, 'CHALLENGE');
    this.send([5, token, {}]);
    return this.waitMsg((m) => m[0] === 2, 5000, 'WELCOME');
  }

  // SUBSCRIBE and wait for its SUBSCRIBED; resolves with the subscription id.
  async subscribe(req, topic, options = {}) {
    this.send([32, req, options, topic]);
    const m = await this.waitMsg((x) => x[0] === 33 && x[1] === req, 5000, `SUBSCRIBED ${req}`);
    return m[2];
  }

  // Stop / restart reading the socket: the gateway's writes back up into its queue.
  pause() { this.ws._socket.pause(); }

  resume() { this.ws._socket.resume(); }

  close() {
    if (!this.closeInfo) this.ws.terminate();
  }
}

// ---- Autobahn|JS session wrapper ----
//
// Topics are backend paths ("/users/1"), not WAMP URIs. Autobahn|JS 22.x does not
// validate URIs on the client side: Session.subscribe() sends `self.resolve(topic)`,
// and resolve() only rewrites "prefix:rest" when "prefix" was registered with
// session.prefix(); so "/users/1", "http://x/y" and "/a/../b" go out verbatim and the
// router alone decides (see node_modules/autobahn/lib/session.js, Session.prototype.resolve
// and Session.prototype.subscribe). No connection or subscribe option is needed.

class WampError extends Error {
  constructor(err) {
    super(`${err.error}${err.args && err.args.length ? `: ${JSON.stringify(err.args)}` : ''}`);
    this.error = err.error;
    this.args = err.args;
    this.kwargs = err.kwargs;
  }
}

function wrapError(e) {
  if (e && typeof e.error === 'string') return new WampError(e);
  return e instanceof Error ? e : new Error(String(e));
}

export function serializerFor(name) {
  if (name === 'json') return new autobahn.serializer.JSONSerializer();
  if (name === 'msgpack') return new autobahn.serializer.MsgpackSerializer();
  throw new Error(`unknown serializer ${name}`);
}

// Connects and joins. Resolves with a session wrapper; rejects with an Error whose
// .reason / .details carry what the router said (e.g. ABORT wamp.error.no_such_realm).
export function connectAutobahn(url, { token = 'tok-alice', serializer = 'json', realm = REALM,
  authmethods = ['ticket'], authid, timeoutMs = scaled(5000) } = {}) {
  return new Promise((resolve, reject) => {
    const conn = new autobahn.Connection({
      url,
      realm,
      authmethods,
      authid,
      serializers: [serializerFor(serializer)],
      max_retries: 0,
      retry_if_unreachable: false,
      onchallenge: (session, method) => {
        if (method !== 'ticket') throw new Error(`unexpected challenge ${method}`);
        return token;
      },
    });
    let settled = false;
    let closedResolve;
    const closed = new Promise((r) => { closedResolve = r; });
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      try { conn.close(); } catch { /* not open */ }
      reject(new Error(`WAMP join timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const wrapper = new Session(conn, closed, serializer);
    conn.onopen = (session, details) => {
      wrapper.attach(session, details);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(wrapper);
    };
    conn.onclose = (reason, details) => {
      wrapper.closeInfo = { reason, details };
      closedResolve({ reason, details });
      wrapper.emit('change');
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        const e = new Error(`WAMP session not opened: ${reason} ${details && details.reason}`);
        e.reason = reason;
        e.details = details;
        reject(e);
      }
      return true; // never retry
    };
    conn.open();
  });
}

class Session extends EventEmitter {
  constructor(conn, closed, serializer) {
    super();
    this.setMaxListeners(1000);
    this.conn = conn;
    this.closed = closed;
    this.serializer = serializer;
    this.wire = [];       // every WAMP message received, in order
    this.events = [];     // {topic, subscription, args, kwargs, details, wireIndex}
    this.closeInfo = null;
  }

  attach(session, details) {
    this.session = session;
    this.welcome = details;
    // Record the raw message order (SUBSCRIBED before EVENT, nothing after UNSUBSCRIBED).
    const transport = this.conn._transport;
    const orig = transport.onmessage;
    transport.onmessage = (msg) => {
      this.wire.push(msg);
      orig(msg);
      this.emit('change');
    };
  }

  get isOpen() { return this.session && this.session.isOpen; }

  // Subscribes; resolves with a Subscription wrapper. Rejects with WampError.
  async subscribe(topic, options) {
    const sub = new Subscription(this, topic);
    try {
      sub.sub = await this.session.subscribe(topic, (args, kwargs, details) => {
        const msg = this.wire[this.wire.length - 1];
        const ev = { topic, subscription: msg && msg[1], args, kwargs, details, wireIndex: this.wire.length - 1, at: Date.now() };
        sub.events.push(ev);
        this.events.push(ev);
        this.emit('change');
      }, options);
    } catch (e) {
      throw wrapError(e);
    }
    return sub;
  }

  async call(procedure, args, kwargs, options) {
    try {
      return await this.session.call(procedure, args, kwargs, options);
    } catch (e) {
      throw wrapError(e);
    }
  }

  async publish(topic, args, kwargs, options) {
    try {
      return await this.session.publish(topic, args, kwargs, options);
    } catch (e) {
      throw wrapError(e);
    }
  }

  // GOODBYE and wait for the transport to close (bounded).
  async close(timeoutMs = scaled(3000)) {
    if (this.closeInfo) return this.closeInfo;
    try {
      this.conn.close();
    } catch {
      /* already closing */
    }
    const t = delay(timeoutMs).then(() => 'timeout');
    const r = await Promise.race([this.closed, t]);
    if (r === 'timeout' && this.conn._transport) this.conn._transport.close();
    return r;
  }
}

class Subscription {
  constructor(session, topic) {
    this.session = session;
    this.topic = topic;
    this.events = [];
    this.sub = null;
  }

  get id() { return this.sub && this.sub.id; }

  // Resolves with the first event (counting from index `from`) matching pred.
  waitEvent(pred = () => true, timeoutMs = scaled(10000), from = 0) {
    return waitFor(() => this.events.slice(from).find((e) => pred(e)), timeoutMs, [this.session],
      `an event on ${this.topic}`);
  }

  async unsubscribe() {
    try {
      await this.session.session.unsubscribe(this.sub);
    } catch (e) {
      throw wrapError(e);
    }
  }
}

// The page body of an event, as a Buffer: msgpack bin arrives as a Buffer/Uint8Array;
// JSON carries binary as "\u0000" + base64 (the WAMP convention); text as a string.
export function bodyBytes(kwargs) {
  const b = kwargs.body;
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (typeof b === 'string' && b.startsWith('\u0000')) return Buffer.from(b.slice(1), 'base64');
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  throw new Error(`unexpected body type ${typeof b}`);
}

export function bodyJson(kwargs) {
  return JSON.parse(bodyBytes(kwargs).toString('utf8'));
}

// Problems found after a stack's stop(): a daemon that did not exit 0 on SIGTERM (crash,
// sanitizer or valgrind report, or still running after the grace period), a sanitizer
// report in a log, or a non-empty valgrind log (WAYMARK_DAEMON_WRAPPER; given whole, up
// to 60 lines, since the stack's temp dir is gone by the time anyone reads the failure).
export function shutdownProblems({ logs, results }) {
  const problems = [];
  for (const [name, st] of Object.entries(results)) {
    if (name === 'redis' || name === 'backend' || !st) continue;
    if (st.code !== 0) problems.push(`${name} exited ${JSON.stringify(st)} on SIGTERM`);
  }
  for (const [file, text] of Object.entries(logs)) {
    if (file.endsWith('.valgrind.log')) {
      if (text.trim()) problems.push(`${file}:\n${text.trimEnd().split('\n').slice(0, 60).join('\n')}`);
      continue;
    }
    for (const line of text.split('\n')) {
      if (/AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/.test(line)) {
        problems.push(`${file}: ${line.slice(0, 200)}`);
        break;
      }
    }
  }
  return problems;
}

// Fails the test if any log line of the stack carries a token ("tok-...").
export function findTokens(logs) {
  const hits = [];
  for (const [file, text] of Object.entries(logs)) {
    text.split('\n').forEach((line, i) => {
      if (line.includes('tok-')) hits.push(`${file}:${i + 1}: ${line.slice(0, 200)}`);
    });
  }
  return hits;
}
