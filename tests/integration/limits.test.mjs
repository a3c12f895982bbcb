// The gateway's session cap follows the machine: it raises its open-files soft limit to
// the hard limit at start, derives the cap from it when WAYMARK_MAX_SESSIONS is unset
// (limit - 256), lowers a setting the limit cannot hold, and refuses one handshake over
// the cap with 503, counted. The gateway runs alone here (no fetcher or dispatcher is
// needed to hold websockets) under `prlimit`, so the limits are small and exact.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { freePort, parseMetrics, poll, waitFor } from './harness.mjs';
import { EventEmitter } from 'node:events';

const BUILD = process.env.WAYMARK_BUILD || 'build';
const RESERVE = 256;
const running = new Set();

// Starts build/waymark-gateway with open files soft:hard and the given env; resolves
// once it logged "gateway started", with its log lines so far and its ports.
async function startGateway({ soft, hard, env = {} }) {
  const ports = { ws: await freePort(), fetch: await freePort(), bump: await freePort(), metrics: await freePort() };
  const child = spawn('prlimit', [`--nofile=${soft}:${hard}`, '--', path.join(BUILD, 'waymark-gateway')], {
    env: {
      ...process.env,
      WAYMARK_LISTEN: `127.0.0.1:${ports.ws}`,
      WAYMARK_FETCH_ENDPOINT: `tcp://127.0.0.1:${ports.fetch}`,
      WAYMARK_BUMP_ENDPOINT: `tcp://127.0.0.1:${ports.bump}`,
      WAYMARK_METRICS_LISTEN: `127.0.0.1:${ports.metrics}`,
      WAYMARK_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  const g = { child, ports, log: '', events: new EventEmitter(), exited: null };
  child.stderr.on('data', (d) => { g.log += d; g.events.emit('change'); });
  child.on('exit', (code) => { g.exited = { code }; running.delete(child); g.events.emit('change'); });
  await waitFor(() => g.log.includes('msg="gateway started"') || g.exited, 15000, [g.events], 'gateway started');
  assert.equal(g.exited, null, `gateway exited at start:\n${g.log}`);
  return g;
}

async function stopGateway(g) {
  if (g.exited) return g.exited;
  g.child.kill('SIGTERM');
  await waitFor(() => g.exited, 15000, [g.events], 'gateway exit');
  return g.exited;
}

// The gateway's own open-files limits, as the kernel has them: [soft, hard].
function fileLimits(g) {
  const line = fs.readFileSync(`/proc/${g.child.pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return line.split(/\s+/).slice(3, 5).map(Number);
}

async function metrics(g) {
  const res = await fetch(`http://127.0.0.1:${g.ports.metrics}/metrics`);
  return parseMetrics(await res.text());
}

// Opens a websocket; resolves {ws} once open, or {status} when the handshake is refused.
function open(g) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${g.ports.ws}/`, ['wamp.2.json'], { handshakeTimeout: 10000 });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (req, res) => { resolve({ status: res.statusCode }); req.destroy(); });
    ws.once('error', (e) => reject(e));
  });
}

after(() => { for (const c of running) c.kill('SIGKILL'); });

describe('the session cap follows the open-files limit', { timeout: 120000 }, () => {
  test('unset: soft limit raised to the hard one, cap = limit - 256, one over gets 503 and is counted', async () => {
    const hard = 400;
    const cap = hard - RESERVE;
    const g = await startGateway({ soft: 300, hard });
    assert.deepEqual(fileLimits(g), [hard, hard], 'the soft limit was raised to the hard one');
    assert.match(g.log, new RegExp(`max sessions derived from the open-files limit" max_sessions=${cap} open_files=${hard} reserve=${RESERVE}`),
      `the derived cap is logged:\n${g.log}`);
    const conns = [];
    try {
      for (let i = 0; i < cap; i++) {
        const r = await open(g);
        assert.ok(r.ws, `connection ${i + 1} of ${cap} is accepted (got ${r.status})`);
        conns.push(r.ws);
      }
      const over = await open(g);
      assert.equal(over.status, 503, 'the handshake over the cap gets 503');
      const v = await metrics(g);
      assert.equal(v.get('waymark_gateway_sessions'), cap);
      assert.equal(v.get('waymark_gateway_sessions_refused_total'), 1, 'the refusal is counted');

      // A slot freed is a slot to be had again.
      conns.pop().close();
      await poll(async () => ((await metrics(g)).get('waymark_gateway_sessions') === cap - 1 ? true : null),
        10000, 'the closed session to leave');
      const again = await open(g);
      assert.ok(again.ws, 'a freed slot accepts a new connection');
      conns.push(again.ws);
    } finally {
      for (const ws of conns) ws.terminate();
      assert.equal((await stopGateway(g)).code, 0);
    }
  });

  test('a WAYMARK_MAX_SESSIONS the limit cannot hold is lowered, with a warning', async () => {
    const g = await startGateway({ soft: 500, hard: 500, env: { WAYMARK_MAX_SESSIONS: '100000' } });
    assert.match(g.log, /level=warn .*max sessions lowered to what the open-files limit holds" max_sessions=100000 open_files=500/);
    assert.match(g.log, /msg="gateway started" .* max_sessions=244/);
    assert.equal((await stopGateway(g)).code, 0);
  });

  test('a WAYMARK_MAX_SESSIONS within the limit is kept; the soft limit rises only as far as it needs', async () => {
    const g = await startGateway({ soft: 300, hard: 500, env: { WAYMARK_MAX_SESSIONS: '3' } });
    assert.match(g.log, /msg="gateway started" .* max_sessions=3\b/);
    assert.deepEqual(fileLimits(g), [300, 500], '3 + 256 fit already: not raised (and never lowered)');
    const g2 = await startGateway({ soft: 200, hard: 500, env: { WAYMARK_MAX_SESSIONS: '100' } });
    assert.deepEqual(fileLimits(g2), [100 + RESERVE, 500], 'raised to the cap plus the reserve');
    assert.equal((await stopGateway(g2)).code, 0);
    const conns = [];
    try {
      for (let i = 0; i < 3; i++) conns.push((await open(g)).ws);
      assert.ok(conns.every(Boolean));
      assert.equal((await open(g)).status, 503);
    } finally {
      for (const ws of conns) ws?.terminate();
      assert.equal((await stopGateway(g)).code, 0);
    }
  });
});
