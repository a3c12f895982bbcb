// Thousands of sessions on one gateway, not timed: each joins with its own ticket,
// subscribes with get_retained and gets its snapshot fetched with its own token (some
// share topics, some share (topic, token) groups); then every session closes, gracefully
// or by its client process being killed, and the gateway's gauges must read zero again:
// a leaked session, subscription, topic or group fails the test. The sessions come from
// the C load client BUILD/tools/wsload (tests/tools/wsload.c; `make test` builds it).
// N = WAYMARK_SCALE_TEST_N, default 3000 (about 5 s here; 20 s with the daemons under
// valgrind, `make valgrind`).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BUILD, metricSum, poll, scaled, startStack, shutdownProblems } from './harness.mjs';
import { WsLoad } from '../tools/wsload.mjs';

const N = Number(process.env.WAYMARK_SCALE_TEST_N || 3000);
const T = { timeout: scaled(180000) };
let stack;
const clients = [];

async function gauges() {
  const m = (await stack.metrics('gateway')).values;
  const g = (name) => metricSum(m, new RegExp(`^waymark_gateway_${name}$`));
  return { sessions: g('sessions'), subscriptions: g('subscriptions'), topics: g('topics'), groups: g('groups') };
}

// Polls /metrics until every gauge reads zero; the error names the ones that do not.
async function gaugesBackToZero(label) {
  let last;
  try {
    await poll(async () => {
      last = await gauges();
      return Object.values(last).every((v) => v === 0);
    }, scaled(60000), label, 50);
  } catch (e) {
    throw new Error(`${e.message}; gateway gauges last read ${JSON.stringify(last)}`);
  }
}

// The gateway's resident memory in KB. Under valgrind or ASan the allocator is theirs
// (with a quarantine of freed blocks), so what the gateway gives back is not seen there.
function allocatorIsOurs() {
  if (process.env.WAYMARK_DAEMON_WRAPPER) return false;
  return !fs.readFileSync(`/proc/${stack.proc('gateway').child.pid}/maps`, 'utf8').includes('libasan');
}
function gatewayRssKb() {
  const status = fs.readFileSync(`/proc/${stack.proc('gateway').child.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)[1]);
}

function load(args) {
  const c = new WsLoad(BUILD, stack.wsUrl, [...args, '--retained', '--print-events',
    '--concurrency', '500', '--setup-timeout-ms', String(scaled(120000))]);
  clients.push(c);
  return c;
}

// Every session index in [from, from + count) got exactly one EVENT, a retained 200
// whose page is the one expected for its topic and token.
function checkSnapshots(c, from, count, expected) {
  const seen = new Map();
  for (const e of c.events) {
    assert.ok(e.ev >= from && e.ev < from + count, `event for session ${e.ev}, outside ${from}..${from + count - 1}`);
    assert.ok(!seen.has(e.ev), `session ${e.ev} got a second event: ${JSON.stringify(e)}`);
    seen.set(e.ev, e);
  }
  assert.equal(seen.size, count);
  for (const [i, e] of seen) {
    assert.equal(e.retained, true, `session ${i}: not a retained event: ${JSON.stringify(e)}`);
    assert.equal(e.status, 200, `session ${i}: ${JSON.stringify(e)}`);
    const want = expected(i);
    assert.equal(e.topic, want.topic);
    assert.equal(e.token, want.token);
    assert.deepEqual(JSON.parse(e.body), want.body, `session ${i}: page ${e.body}`);
  }
}

describe(`${N} sessions on one gateway`, { timeout: scaled(600000) }, () => {
  before(async () => {
    stack = await startStack({ fetchers: 2, extraEnv: { WAYMARK_LOG_LEVEL: 'info', WAYMARK_MAX_SESSIONS: String(N + 100) } });
  }, { timeout: scaled(60000) });

  after(async () => {
    await Promise.all(clients.map((c) => c.end()));
    if (stack) {
      const stopped = await stack.stop();
      const problems = shutdownProblems(stopped);
      if (problems.length) throw new Error(`unclean shutdown: ${JSON.stringify(problems)}`);
    }
  }, { timeout: scaled(60000) });

  test('each session gets its own snapshot; after closing them all the gauges read zero and the memory is given back', T, async () => {
    const rssBefore = gatewayRssKb();
    // Two thirds: /pages/scale/<i % K>, four sessions per topic, a token each. One third:
    // /users/<i % 100> with 50 tokens shared, so sessions also share (topic, token) groups.
    const nPages = Math.floor((2 * N) / 3);
    const nUsers = N - nPages;
    const kPages = Math.max(1, Math.floor(nPages / 4));
    const pages = load(['--count', String(nPages), '--from', '0', '--token', 'tok-s%d',
      '--topic', '/pages/scale/%d', '--topics', String(kPages)]);
    const users = load(['--count', String(nUsers), '--from', String(nPages), '--token', 'tok-u%d',
      '--tokens', '50', '--topic', '/users/%d', '--topics', '100']);
    const setupMs = scaled(150000);
    const readies = await Promise.all([pages.ready(setupMs), users.ready(setupMs)]);
    for (const r of readies) {
      assert.equal(r.failed, 0, `sessions failed: ${JSON.stringify(r)}\n${pages.stderr}${users.stderr}`);
      assert.equal(r.subscribed, r.sessions);
    }
    const g = await gauges();
    assert.equal(g.sessions, N);
    assert.equal(g.subscriptions, N);
    assert.equal(g.topics, kPages + Math.min(100, nUsers));

    // Every snapshot arrives (no timing asserted: a deadline only).
    await poll(() => pages.events.length >= nPages && users.events.length >= nUsers,
      scaled(120000), `${N} snapshots`, 50).catch((e) => {
      throw new Error(`${e.message}: got ${pages.events.length} of ${nPages} and ${users.events.length} of ${nUsers}`);
    });
    checkSnapshots(pages, 0, nPages, (i) => {
      const topic = `/pages/scale/${i % kPages}`;
      return { topic, token: `tok-s${i}`, body: { path: topic, version: 1, viewer: `s${i}` } };
    });
    checkSnapshots(users, nPages, nUsers, (i) => {
      const id = String(i % 100);
      return { topic: `/users/${id}`, token: `tok-u${i % 50}`, body: { id, name: `User ${id}`, version: 1, viewer: `u${i % 50}` } };
    });
    // All close at once (close frames); the gateway frees every session and subscription.
    const rssWith = gatewayRssKb();
    await Promise.all([pages.close(scaled(60000)), users.close(scaled(60000))]);
    await gaugesBackToZero('sessions, subscriptions, topics and groups back to 0 after closing');
    if (allocatorIsOurs()) {
      // glibc keeps freed memory unless the gateway trims after a mass close: RSS must come
      // back near where it started (the sessions took several MB more).
      let rss;
      await poll(() => (rss = gatewayRssKb()) <= rssBefore * 1.25 + 1024, scaled(15000),
        'gateway RSS back near its value before the sessions').catch((e) => {
        throw new Error(`${e.message}: ${rssBefore} KB before, ${rssWith} KB with ${N} sessions, ${rss} KB after`);
      });
      assert.ok(rssWith > rssBefore + 4096, `the sessions used memory at all (${rssBefore} -> ${rssWith} KB)`);
    }
  });

  test('sessions whose client dies without a close frame are freed too', T, async () => {
    const n = Math.max(10, Math.floor(N / 3));
    const c = load(['--count', String(n), '--from', '0', '--token', 'tok-k%d', '--topic', '/pages/killed/%d',
      '--topics', String(Math.max(1, Math.floor(n / 2)))]);
    const r = await c.ready(scaled(150000));
    assert.equal(r.failed, 0, `sessions failed: ${JSON.stringify(r)}\n${c.stderr}`);
    await poll(() => c.events.length >= n, scaled(120000), `${n} snapshots`, 50);
    assert.equal((await gauges()).sessions, n);
    c.child.kill('SIGKILL');     // the kernel closes every socket: no websocket close frame
    await c.exited;
    await gaugesBackToZero('sessions, subscriptions, topics and groups back to 0 after the client died');
  });
});
