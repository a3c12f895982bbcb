// The PHP demo backend (demo/, PHP's built-in server) in front of a whole Waymark stack
// from tests/integration/harness.mjs: Waymark fetches from the demo, the demo bumps
// through its Redis. Each stack gets its own ports and its own data dir.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, ROOT, Stack, waitFor } from '../integration/harness.mjs';
import { EventEmitter } from 'node:events';

export { ROOT };

// Starts `php -S 127.0.0.1:PORT demo/public/index.php` with PHP_CLI_SERVER_WORKERS
// processes (so the file store is shared between processes, as in production). Resolves
// once the server says it started. The server and its workers are one process group.
// dir: a directory of its own; the data goes to dir/data, the server's log to dir/php.log.
export async function startDemo({ port, redisUrl, wsUrl, dir, workers = 4, env = {} }) {
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'php.log');
  const log = fs.openSync(logFile, 'a');
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, path.join(ROOT, 'demo', 'public', 'index.php')], {
    cwd: ROOT,
    detached: true,      // its own process group: the workers go down with it
    stdio: ['ignore', log, 'pipe'],
    env: {
      ...process.env,
      PHP_CLI_SERVER_WORKERS: String(workers),
      WAYMARK_DEMO_DATA: dataDir,
      WAYMARK_REDIS_URL: redisUrl,
      WAYMARK_DEMO_WS_URL: wsUrl,
      ...env,
    },
  });
  fs.closeSync(log);
  const ev = new EventEmitter();
  let stderr = '';
  let exited = null;
  child.stderr.on('data', (d) => {
    stderr += d;
    fs.appendFileSync(logFile, d);
    if (stderr.length > 1 << 20) stderr = stderr.slice(-65536);
    ev.emit('change');
  });
  child.on('exit', (code, signal) => { exited = { code, signal }; ev.emit('change'); });
  const demo = {
    url: `http://127.0.0.1:${port}`,
    child,
    dir,
    dataDir,
    logFile,
    log: () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } },
    async stop() {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
      await done;
      clearTimeout(t);
      // The workers are in the same group; make sure none outlives the master.
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* all gone */ }
    },
  };
  process.on('exit', () => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } });
  try {
    await waitFor(() => {
      if (exited) throw new Error(`php -S exited during startup: ${JSON.stringify(exited)}\n${stderr}`);
      return /Development Server \(http:\/\/127\.0\.0\.1:\d+\) started/.test(stderr);
    }, 10000, [ev], 'php -S to start');
  } catch (e) {
    await demo.stop();
    throw e;
  }
  return demo;
}

// A Waymark stack whose backend is the PHP demo. The demo's port is chosen first so the
// daemons can be pointed at it; the harness's readiness probe (a bump reaching a session)
// does not need the backend to answer.
export async function startDemoStack({ fetchers = 1 } = {}) {
  const port = await freePort();
  const stack = await new Stack({ fetchers, backendUrl: `http://127.0.0.1:${port}` }).start();
  let demo;
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waymark-demo-'));
    demo = await startDemo({
      port,
      redisUrl: stack.env.WAYMARK_REDIS_URL,
      wsUrl: stack.wsUrl,
      dir,
    });
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return {
    stack,
    demo,
    async stop() {
      await demo.stop();
      if (!process.env.WAYMARK_KEEP_TMP) fs.rmSync(demo.dir, { recursive: true, force: true });
      return stack.stop();
    },
  };
}

// An HTTP request to the demo as a user (token), without Waymark.
export async function demoRequest(base, method, p, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(base + p, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}
