// Bad input never crashes a process, leaks, or loses other clients' updates, and it is
// counted: malformed WAMP over raw websockets, junk on the ZeroMQ sockets (tests/tools/
// zjunk), bad bumps through Redis, and a backend that answers garbage. After every abuse
// a well-behaved session still gets its bumped page and the gateway is still running.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import msgpack5 from 'msgpack5';
import {
  BUILD, bodyJson, freePort, metricSum, parseMetrics as parseMetricsText, poll, RawWamp, REALM,
  shareStack, waitFor, withStack,
} from './harness.mjs';

const mp = msgpack5();
const T = { timeout: 60000 };
const WATCH = '/pages/robust-watch';
const ABORT = 3;
const MAX_ID = 2 ** 53;

async function rawOpen(stack, ser = 'json', opts = {}) {
  const c = new RawWamp(stack.wsUrl, [`wamp.2.${ser}`], opts);
  await c.opened();
  return c;
}

// The session answered ABORT with this reason and then closed the websocket.
async function expectAbort(c, reason) {
  const m = await c.waitMsg((x) => x[0] === ABORT, 5000, `ABORT ${reason}`);
  assert.equal(m[2], reason, `ABORT reason: ${JSON.stringify(m)}`);
  assert.equal(typeof m[1], 'object');
  assert.equal(c.binary[c.msgs.indexOf(m)], c.ser === 'msgpack', 'JSON in text frames, msgpack in binary frames');
  await c.waitClose();
  return m;
}

async function gw(stack) { return (await stack.metrics('gateway')).values; }
const val = (values, name) => metricSum(values, new RegExp(`^${name}$`));

// ---- one shared stack with a well-behaved watcher session ----

let stack;
let watcher;
let watchSub;
let version = 1;
let junkBumpEndpoint;

// The watcher still gets a page fetched after a fresh bump, and the gateway still runs.
async function assertHealthy(label) {
  assert.ok(stack.proc('gateway').running, `gateway died after ${label}`);
  assert.ok(stack.proc('dispatcher').running, `dispatcher died after ${label}`);
  for (const f of stack.fetcherNames) assert.ok(stack.proc(f).running, `${f} died after ${label}`);
  const v = ++version;
  await stack.setVersion(WATCH, v);
  await stack.publish(WATCH);
  await watchSub.waitEvent((e) => e.kwargs.status === 200 && bodyJson(e.kwargs).version === v, 15000);
  assert.ok(watcher.isOpen, `watcher session closed after ${label}`);
}

// After a gateway crash: note its log, start it again with a new watcher, so that the
// remaining cases still test something. Returns the crash report for the failing test.
const crashes = [];
async function recoverGateway(label) {
  const g = stack.proc('gateway');
  if (g.running) return null;
  const report = `gateway died (${JSON.stringify(g.exitStatus)}) during "${label}":\n${g.tail(25)}`;
  crashes.push(report);
  await stack.startProc('gateway');
  await stack.waitPipeline();
  watcher = await stack.connect({ token: 'tok-watch', serializer: 'msgpack' });
  watchSub = await watcher.subscribe(WATCH);
  return report;
}

// Runs one abuse: counters named in `moved` must have grown, the watcher must still work.
async function abuse(label, moved, fn) {
  const before = await gw(stack);
  try {
    await fn();
  } catch (e) {
    const report = await recoverGateway(label);
    throw report ? new Error(report) : e;
  }
  const report = await recoverGateway(label);
  if (report) throw new Error(report);
  const afterV = await gw(stack);
  for (const name of moved) {
    assert.ok(val(afterV, name) > val(before, name),
      `${label}: ${name} did not move (${val(before, name)} -> ${val(afterV, name)})`);
  }
  await assertHealthy(label);
}

describe('robustness: bad input is refused, counted, and harms no one else', { timeout: 600000 }, () => {
  shareStack((s) => { stack = s; }, { check: true });

  before(async () => {
    // The gateway also connects to a second bump endpoint where zjunk will bind a PUB.
    junkBumpEndpoint = `tcp://127.0.0.1:${await freePort()}`;
    const g = stack.proc('gateway');
    await g.stop();
    g.env = { ...g.env, WAYMARK_BUMP_ENDPOINT: `${stack.env.WAYMARK_BUMP_ENDPOINT},${junkBumpEndpoint}` };
    await stack.startProc('gateway');
    await stack.waitHealthy();
    await stack.waitPipeline();
    watcher = await stack.connect({ token: 'tok-watch', serializer: 'msgpack' });
    watchSub = await watcher.subscribe(WATCH);
    await assertHealthy('start');
  }, { timeout: 90000 });

  // ---- handshake ----

  test('no subprotocol: the handshake is refused', T, () => abuse('no subprotocol', ['waymark_gateway_sessions_refused_total'], async () => {
    const c = new RawWamp(stack.wsUrl, undefined);
    await assert.rejects(c.opened());
    c.close();
  }));

  test('unknown subprotocol only: the handshake is refused', T, () => abuse('unknown subprotocol', [], async () => {
    const c = new RawWamp(stack.wsUrl, ['wamp.2.cbor']);
    await assert.rejects(c.opened());
    c.close();
  }));

  test('unknown subprotocol only: the refusal is counted', T,
    () => abuse('unknown subprotocol counted', ['waymark_gateway_sessions_refused_total'], async () => {
      const c = new RawWamp(stack.wsUrl, ['wamp.2.cbor']);
      await assert.rejects(c.opened());
      c.close();
    }));

  test('a wrong path is refused', T, () => abuse('wrong path', ['waymark_gateway_sessions_refused_total'], async () => {
    const c = new RawWamp(`${stack.wsUrl}other`, ['wamp.2.json']);
    await assert.rejects(c.opened());
    c.close();
  }));

  // A refused handshake answers with an HTTP status that says why, not a dropped socket.
  const upgradeStatus = (p, protocols) => new Promise((resolve, reject) => {
    const u = new URL(stack.wsUrl);
    const headers = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    if (protocols) headers['Sec-WebSocket-Protocol'] = protocols;
    const req = http.request({ host: u.hostname, port: u.port, path: p, headers, timeout: 5000 });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end();
  });
  test('refused handshakes get 400 (subprotocol) or 404 (path); a good one gets 101', T, () =>
    abuse('handshake statuses', ['waymark_gateway_sessions_refused_total'], async () => {
      assert.equal(await upgradeStatus('/', null), 400);
      assert.equal(await upgradeStatus('/', 'wamp.2.cbor, mqtt'), 400);
      assert.equal(await upgradeStatus('/ws', 'wamp.2.json'), 404);
      assert.equal(await upgradeStatus('/', 'wamp.2.cbor, wamp.2.msgpack'), 101);
    }));

  // ---- undecodable frames ----

  const VIOLATION = ['waymark_gateway_protocol_violations_total', 'waymark_gateway_sessions_aborted_total'];
  const frames = [
    ['json', 'invalid JSON', '[1, "waymark", {'],
    ['json', 'a JSON non-array', '{"hello": 1}'],
    ['json', 'an empty JSON array', '[]'],
    ['json', 'a JSON array without a message code', '["HELLO", "waymark", {}]'],
    ['json', 'a JSON number', '1'],
    ['json', 'invalid UTF-8 in a binary frame', Buffer.from([0x5b, 0x31, 0x2c, 0x22, 0xff, 0xfe, 0x22, 0x5d])],
    ['json', 'trailing data', '[1, "waymark", {}] [2]'],
    ['json', 'a message code above 2^53', `[${'9'.repeat(30)}, "waymark", {}]`],
    ['msgpack', 'msgpack garbage in a binary frame', Buffer.from([0xc1, 0xff, 0x00, 0x93])],
    ['msgpack', 'a truncated msgpack array', Buffer.from([0x93, 0x01, 0xa7, 0x77])],
    ['msgpack', 'a msgpack array that announces 4 billion items', Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['msgpack', 'a msgpack map with an integer key', mp.encode([1, 'waymark', new Map([[1, 2]])]).slice()],
    ['msgpack', 'a msgpack non-array', mp.encode({ a: 1 }).slice()],
  ];
  for (const [ser, what, bytes] of frames) {
    test(`[${ser}] ${what}: ABORT protocol_violation`, T, () => abuse(what, VIOLATION, async () => {
      const c = await rawOpen(stack, ser);
      c.sendRaw(bytes, { binary: Buffer.isBuffer(bytes) });
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));
  }

  test('[msgpack] a JSON HELLO in a text frame on a msgpack session: ABORT protocol_violation', T,
    () => abuse('text frame on msgpack', VIOLATION, async () => {
      const c = await rawOpen(stack, 'msgpack');
      c.sendRaw(JSON.stringify([1, REALM, { authmethods: ['ticket'] }]), { binary: false });
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));

  // ---- out of order ----

  for (const ser of ['json', 'msgpack']) {
    test(`[${ser}] SUBSCRIBE before HELLO: ABORT protocol_violation`, T, () => abuse('subscribe before hello', VIOLATION, async () => {
      const c = await rawOpen(stack, ser);
      c.send([32, 1, {}, WATCH]);
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));

    test(`[${ser}] WELCOME from a client before HELLO: ABORT protocol_violation`, T, () => abuse('welcome first', VIOLATION, async () => {
      const c = await rawOpen(stack, ser);
      c.send([2, 1, {}]);
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));

    test(`[${ser}] SUBSCRIBE after CHALLENGE, before WELCOME: ABORT protocol_violation`, T, () => abuse('subscribe before welcome', VIOLATION, async () => {
      const c = await rawOpen(stack, ser);
      c.send([1, REALM, { authmethods: ['ticket'] }]);
      await c.waitMsg((m) => m[0] === 4, 5000, 'CHALLENGE');
      c.send([32, 1, {}, WATCH]);
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));

    test(`[${ser}] a second HELLO in an established session: ABORT protocol_violation`, T, () => abuse('second hello', VIOLATION, async () => {
      const c = await rawOpen(stack, ser);
      await c.join();
      c.send([1, REALM, { authmethods: ['ticket'] }]);
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));
  }

  // ---- ids and arity ----

  const badIds = [['0', 0], ['negative', -1], ['2^53+1', MAX_ID + 1], ['a float', 1.5], ['a string', '1'], ['null', null]];
  for (const ser of ['json', 'msgpack']) {
    for (const [what, id] of badIds) {
      test(`[${ser}] SUBSCRIBE with request id ${what}: ABORT protocol_violation`, T, () => abuse(`id ${what}`, VIOLATION, async () => {
        const c = await rawOpen(stack, ser);
        await c.join();
        if (ser === 'json' && what === '2^53+1') c.sendRaw(`[32, 9007199254740993, {}, "${WATCH}"]`);
        else if (ser === 'msgpack' && what === '2^53+1') {
          // uint64 0x0020000000000001, written by hand (msgpack5 would write a float64)
          c.sendRaw(Buffer.concat([Buffer.from([0x94, 0x20, 0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 0x01]),
            mp.encode({}).slice(), mp.encode(WATCH).slice()]), { binary: true });
        } else c.send([32, id, {}, WATCH]);
        await expectAbort(c, 'wamp.error.protocol_violation');
      }));
    }

    test(`[${ser}] request id 2^53 is still valid: SUBSCRIBED`, T, () => abuse('id 2^53', [], async () => {
      const c = await rawOpen(stack, ser);
      await c.join();
      if (ser === 'json') c.sendRaw(`[32, 9007199254740992, {}, "${WATCH}"]`);
      else {
        c.sendRaw(Buffer.concat([Buffer.from([0x94, 0x20, 0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 0x00]),
          mp.encode({}).slice(), mp.encode(WATCH).slice()]), { binary: true });
      }
      const m = await c.waitMsg((x) => x[0] === 33 || x[0] === ABORT, 5000, 'SUBSCRIBED');
      assert.equal(m[0], 33, JSON.stringify(m));
      assert.equal(Number(m[1]), MAX_ID);
      c.send([6, {}, 'wamp.close.close_realm']);
      await c.waitClose();
    }));

    test(`[${ser}] UNSUBSCRIBE of subscription id 0: ABORT protocol_violation`, T, () => abuse('unsubscribe 0', VIOLATION, async () => {
      const c = await rawOpen(stack, ser);
      await c.join();
      c.send([34, 1, 0]);
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));

    const arity = [
      ['HELLO without details', null, [1, REALM]],
      ['HELLO with a non-string realm', null, [1, 42, {}]],
      ['SUBSCRIBE without topic', 'joined', [32, 1, {}]],
      ['SUBSCRIBE with an extra element', 'joined', [32, 1, {}, WATCH, 'extra']],
      ['SUBSCRIBE with array options', 'joined', [32, 1, [], WATCH]],
      ['SUBSCRIBE with a numeric topic', 'joined', [32, 1, {}, 7]],
      ['CALL with non-array args', 'joined', [48, 1, {}, 'waymark.auth.refresh', 'tok-x']],
      ['GOODBYE without reason', 'joined', [6, {}]],
      ['an unknown message code', 'joined', [99, 1, {}]],
      ['a router-only message (EVENT)', 'joined', [36, 1, 2, {}]],
    ];
    for (const [what, state, msg] of arity) {
      test(`[${ser}] ${what}: ABORT protocol_violation`, T, () => abuse(what, VIOLATION, async () => {
        const c = await rawOpen(stack, ser);
        if (state === 'joined') await c.join();
        c.send(msg);
        await expectAbort(c, 'wamp.error.protocol_violation');
      }));
    }
  }

  // ---- sizes, fragments, nesting ----

  for (const ser of ['json', 'msgpack']) {
    test(`[${ser}] a 1.1 MB message: close 1009`, T, () => abuse('1.1 MB message', ['waymark_gateway_protocol_violations_total'], async () => {
      const c = await rawOpen(stack, ser);
      await c.join();
      const big = 'x'.repeat(1100 * 1000);
      c.send([32, 1, {}, `/pages/${big}`]);
      const info = await c.waitClose(10000);
      assert.equal(info.code, 1009, `close code ${JSON.stringify(info)}`);
    }));
  }

  test('[json] a message over 1 MiB in 1 KiB fragments: close 1009 before it ends', T, () => abuse('fragmented over 1 MiB', ['waymark_gateway_protocol_violations_total'], async () => {
    const c = await rawOpen(stack, 'json');
    const chunk = Buffer.alloc(1024, 0x20);
    // 1025 KiB and no final fragment: the cap must apply to the reassembly, and we stop
    // writing right there so the close frame is read rather than lost to a reset.
    for (let i = 0; i < 1025; i++) c.sendRaw(chunk, { binary: false, fin: false });
    const info = await c.waitClose(10000);
    assert.equal(info.code, 1009);
  }));

  for (const ser of ['json', 'msgpack']) {
    test(`[${ser}] a HELLO in fragments reassembles and the session works`, T, () => abuse('fragmented hello', [], async () => {
      const c = await rawOpen(stack, ser);
      const bytes = Buffer.from(c.encode([1, REALM, { authmethods: ['ticket'], roles: { subscriber: {} } }]));
      const n = 7;
      const step = Math.ceil(bytes.length / n);
      for (let i = 0; i < bytes.length; i += step) {
        c.sendRaw(bytes.subarray(i, i + step), { binary: ser === 'msgpack', fin: i + step >= bytes.length });
      }
      await c.waitMsg((m) => m[0] === 4, 5000, 'CHALLENGE');
      c.send([5, 'tok-frag', {}]);
      await c.waitMsg((m) => m[0] === 2, 5000, 'WELCOME');
      c.send([32, 7, { get_retained: true }, WATCH]);
      const ev = await c.waitMsg((m) => m[0] === 36, 10000, 'retained EVENT');
      assert.equal(ev[5].status, 200);
      c.send([6, {}, 'wamp.close.close_realm']);
      await c.waitClose();
    }));

    test(`[${ser}] a HELLO with a 200 KB authid: joins, the authid is not echoed`, T, () => abuse('huge authid', [], async () => {
      const c = await rawOpen(stack, ser);
      const huge = 'a'.repeat(200 * 1000);
      const w = await c.join('tok-huge', { authid: huge });
      assert.equal(typeof w[2].authid, 'string');
      assert.ok(w[2].authid.length <= 256, `authid of ${w[2].authid.length} bytes echoed`);
      c.send([6, {}, 'wamp.close.close_realm']);
      await c.waitClose();
    }));

    test(`[${ser}] AUTHENTICATE with an empty ticket: ABORT authentication_failed`, T, () => abuse('empty ticket', ['waymark_gateway_auth_failed_total', 'waymark_gateway_sessions_aborted_total'], async () => {
      const c = await rawOpen(stack, ser);
      c.send([1, REALM, { authmethods: ['ticket'] }]);
      await c.waitMsg((m) => m[0] === 4, 5000, 'CHALLENGE');
      c.send([5, '', {}]);
      await expectAbort(c, 'wamp.error.authentication_failed');
    }));

    for (const [what, ticket] of [['a control character', 'tok-a\r\nX-Evil: 1'], ['a number', 42], ['5000 bytes', 't'.repeat(5000)]]) {
      test(`[${ser}] AUTHENTICATE with a ticket of ${what}: ABORT authentication_failed`, T, () => abuse(`ticket ${what}`, ['waymark_gateway_auth_failed_total'], async () => {
        const c = await rawOpen(stack, ser);
        c.send([1, REALM, { authmethods: ['ticket'] }]);
        await c.waitMsg((m) => m[0] === 4, 5000, 'CHALLENGE');
        c.send([5, ticket, {}]);
        await expectAbort(c, 'wamp.error.authentication_failed');
      }));
    }

    test(`[${ser}] deep nesting (100 levels) in HELLO details: ABORT protocol_violation`, T, () => abuse('deep nesting', VIOLATION, async () => {
      const c = await rawOpen(stack, ser);
      let deep = 1;
      for (let i = 0; i < 100; i++) deep = [deep];
      c.send([1, REALM, { authmethods: ['ticket'], x: deep }]);
      await expectAbort(c, 'wamp.error.protocol_violation');
    }));
  }

  test('[json] deep nesting (200,000 levels): ABORT protocol_violation', T, () => abuse('very deep nesting', VIOLATION, async () => {
    const c = await rawOpen(stack, 'json');
    c.sendRaw(`[1, "${REALM}", {"x": ${'['.repeat(200000)}${']'.repeat(200000)}}]`);
    await expectAbort(c, 'wamp.error.protocol_violation');
  }));

  test('[msgpack] deep nesting (200,000 levels): ABORT protocol_violation', T, () => abuse('very deep msgpack', VIOLATION, async () => {
    const c = await rawOpen(stack, 'msgpack');
    c.sendRaw(Buffer.concat([Buffer.from([0x93, 0x01]), mp.encode(REALM).slice(), Buffer.alloc(200000, 0x91), Buffer.from([0x01])]), { binary: true });
    await expectAbort(c, 'wamp.error.protocol_violation');
  }));

  test('twenty abusive sessions at once harm no one', T, () => abuse('flood', [], async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => rawOpen(stack, i % 2 ? 'msgpack' : 'json')));
    for (const c of clients) c.sendRaw(c.ser === 'json' ? '[1,' : Buffer.from([0xc1]), { binary: c.ser === 'msgpack' });
    await Promise.all(clients.map((c) => expectAbort(c, 'wamp.error.protocol_violation')));
  }));

  test('every abusive session is gone: the sessions gauge is back to the watcher alone', T, async () => {
    // Abusers of its own, so that the gauge has to come down even when this test runs
    // alone: first it must count them, then drop back to the watcher once they are aborted.
    const sessions = async () => val(await gw(stack), 'waymark_gateway_sessions');
    const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => rawOpen(stack, i % 2 ? 'msgpack' : 'json')));
    await poll(async () => (await sessions()) >= 1 + clients.length, 10000, 'sessions gauge counting the abusers');
    for (const c of clients) c.sendRaw(c.ser === 'json' ? '[1,' : Buffer.from([0xc1]), { binary: c.ser === 'msgpack' });
    await Promise.all(clients.map((c) => expectAbort(c, 'wamp.error.protocol_violation')));
    await poll(async () => (await sessions()) === 1, 10000, 'sessions gauge back to 1');
  });

  // ---- ZeroMQ peers ----

  // stdin: true gives zjunk a pipe (router --flood reads URLs from it).
  function runZjunk(args, { stdin = false } = {}) {
    const child = spawn(path.join(BUILD, 'tools', 'zjunk'), args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const lines = [];
    let err = '';
    const ev = new EventEmitter();
    readline.createInterface({ input: child.stdout }).on('line', (l) => { lines.push(JSON.parse(l)); ev.emit('change'); });
    child.stderr.on('data', (d) => { err += d; });
    const exited = once(child, 'close').then(([code]) => ({ code, err }));
    const kill = setTimeout(() => child.kill('SIGKILL'), 30000);
    exited.then(() => clearTimeout(kill));
    // 'close' (not 'exit'): every stdout line has been read by then.
    return { child, lines, ev, exited };
  }

  test('junk from a fetcher on the fetch endpoint: counted, then its held jobs are retried elsewhere', T, async (t) => {
    const before = await gw(stack);
    const z = runZjunk(['fetch', `tcp://127.0.0.1:${stack.ports.fetch}`, '--hold-ms', '8000']);
    const first = await waitFor(() => z.lines[0], 10000, [z.ev], 'zjunk summary');
    await poll(async () => val(await gw(stack), 'waymark_gateway_bad_messages_total') >= val(before, 'waymark_gateway_bad_messages_total') + first.bad,
      10000, `${first.bad} bad messages counted`);
    const mid = await gw(stack);
    assert.ok(val(mid, 'waymark_gateway_results_stale_total') >= val(before, 'waymark_gateway_results_stale_total') + 3,
      'RESULTs for unknown job ids are counted as stale');
    // zjunk now holds UINT32_MAX credits and never answers: bumps while it does still
    // reach the watcher once the gateway presumes it dead and retries its jobs.
    await assertHealthy('fetcher junk, while the junk fetcher holds credit');
    const { code, err } = await z.exited;
    assert.equal(code, 0, err);
    const jobs = z.lines[1].jobs;
    const end = await gw(stack);
    t.diagnostic(`zjunk sent ${first.sent} frames (${first.bad} bad) and swallowed ${jobs} jobs; ` +
      `jobs_retried +${val(end, 'waymark_gateway_jobs_retried_total') - val(before, 'waymark_gateway_jobs_retried_total')}, ` +
      `fetchers_lost +${val(end, 'waymark_gateway_fetchers_lost_total') - val(before, 'waymark_gateway_fetchers_lost_total')}`);
    if (jobs > 0) {
      assert.ok(val(end, 'waymark_gateway_jobs_retried_total') > val(before, 'waymark_gateway_jobs_retried_total'),
        `zjunk swallowed ${jobs} jobs but none was retried`);
    }
    await assertHealthy('fetcher junk, after it left');
  });

  test('junk from a second dispatcher on a bump endpoint: counted, delivery unaffected', T, async () => {
    const before = await gw(stack);
    const z = runZjunk(['pub', junkBumpEndpoint]);
    const { code, err } = await z.exited;
    assert.equal(code, 0, err);
    const { bad } = z.lines[0];
    await poll(async () => val(await gw(stack), 'waymark_gateway_bad_messages_total') >= val(before, 'waymark_gateway_bad_messages_total') + bad,
      10000, `${bad} bad messages counted`);
    await assertHealthy('dispatcher junk');
  });

  test('junk from a gateway to a fetcher: counted, off-origin JOBs refused, good JOBs done', T, async () => {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const metricsPort = await freePort();
    const z = runZjunk(['router', endpoint, '--origin', stack.backendUrl, '--hold-ms', '10000']);
    // A fetcher of our own whose only gateway is zjunk.
    const fetcher = spawn(path.join(BUILD, 'waymark-fetcher'), [], {
      env: { ...stack.env, WAYMARK_FETCH_ENDPOINT: endpoint, WAYMARK_METRICS_LISTEN: `127.0.0.1:${metricsPort}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    fetcher.stderr.on('data', (d) => { log += d; });
    const fetcherExit = once(fetcher, 'close');
    try {
      const { code, err } = await z.exited;
      assert.equal(code, 0, err);
      const { bad } = z.lines[0];
      const results = new Map(z.lines.filter((l) => l.id).map((l) => [l.id, l]));
      assert.equal(z.lines.at(-1).results, 6, JSON.stringify(z.lines));
      for (const id of [101, 102, 103]) {
        assert.equal(results.get(id).status, 502, `job ${id}: ${JSON.stringify(results.get(id))}`);
        assert.ok(results.get(id).error, `job ${id} gives a reason`);
      }
      assert.equal(results.get(104).status, 200);
      assert.equal(results.get(106).status, 200, 'timeout 0 and max_body 0 mean the defaults');
      const h = results.get(105);
      assert.equal(h.status, 502, `a request header with CR LF is refused: ${JSON.stringify(h)}`);
      for (const p of ['/pages/zjunk-outside', '/pages/zjunk-userinfo', '/zjunk-dotdot', '/pages/zjunk-header']) {
        assert.deepEqual(await stack.requests(p), [], `the backend never saw ${p}`);
      }
      const m = parseMetricsText(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
      assert.ok(val(m, 'waymark_fetcher_bad_messages_total') >= bad,
        `fetcher bad_messages ${val(m, 'waymark_fetcher_bad_messages_total')} < ${bad}`);
      assert.equal(fetcher.exitCode, null, 'the fetcher is still running');
    } finally {
      fetcher.kill('SIGTERM');
      const [code] = await fetcherExit;
      assert.equal(code, 0, `fetcher exit on SIGTERM:\n${log.split('\n').slice(-20).join('\n')}`);
      assert.doesNotMatch(log, /AddressSanitizer|LeakSanitizer|runtime error:/);
      assert.doesNotMatch(log, /tok-/);
    }
    await assertHealthy('fetcher fed junk');
  });

  test('a gateway flooding JOBs past its credit: the fetcher runs at most twice its concurrency, drops and counts the rest', T, async (t) => {
    const CONCURRENCY = 4, CAP = 2 * CONCURRENCY, N = 10 * CONCURRENCY, SLOW_MS = 3000;
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const metricsPort = await freePort();
    const z = runZjunk(['router', endpoint, '--flood', String(N), '--url', `${stack.backendUrl}/slow/zjunk-flood?ms=${SLOW_MS}`,
      '--hold-ms', '25000'], { stdin: true });
    const fetcher = spawn(path.join(BUILD, 'waymark-fetcher'), [], {
      env: {
        ...stack.env, WAYMARK_FETCH_ENDPOINT: endpoint, WAYMARK_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        WAYMARK_FETCH_CONCURRENCY: String(CONCURRENCY),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    fetcher.stderr.on('data', (d) => { log += d; });
    const fetcherExit = once(fetcher, 'close');
    const metrics = async () => parseMetricsText(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
    const isFlood = (l) => l.id >= 1001 && l.id < 1001 + N;
    try {
      await waitFor(() => z.lines[0], 15000, [z.ev], 'zjunk flood summary');
      assert.equal(z.lines[0].flood, N);
      // Sample the gauge while the slow jobs run, until the fetcher has read every JOB.
      let maxInFlight = 0;
      const m = await poll(async () => {
        const v = await metrics();
        maxInFlight = Math.max(maxInFlight, val(v, 'waymark_fetcher_jobs_in_flight'));
        return val(v, 'waymark_fetcher_jobs_received_total') === N ? v : null;
      }, 10000, `the fetcher read all ${N} JOBs`);
      assert.ok(maxInFlight <= CAP, `jobs_in_flight reached ${maxInFlight} > ${CAP}`);
      const inFlight = val(m, 'waymark_fetcher_jobs_in_flight');
      const over = val(m, 'waymark_fetcher_jobs_over_capacity_total');
      assert.equal(inFlight, CAP, `the first ${CAP} slow jobs are in flight`);
      assert.equal(over, N - CAP, 'every JOB past the cap is counted');
      // What ran is answered; what was dropped is not (no made-up 5xx).
      await waitFor(() => z.lines.filter(isFlood).length >= N - over, 2 * SLOW_MS + 10000, [z.ev], `${N - over} flood RESULTs`);
      const ran = z.lines.filter(isFlood);
      assert.equal(ran.length, N - over, JSON.stringify(ran));
      for (const r of ran) assert.equal(r.status, 200, JSON.stringify(r));
      // After the flood a normal job still runs.
      z.child.stdin.write(`${stack.backendUrl}/pages/zjunk-after-flood\n`);
      const after = await waitFor(() => z.lines.find((l) => l.id === 2001), 10000, [z.ev], 'the RESULT of the job after the flood');
      assert.equal(after.status, 200, JSON.stringify(after));
      z.child.stdin.end();
      const { code, err } = await z.exited;
      assert.equal(code, 0, err);
      assert.equal(z.lines.filter(isFlood).length, N - over, 'dropped JOBs never get a RESULT');
      const end = await metrics();
      assert.equal(val(end, 'waymark_fetcher_jobs_over_capacity_total'), N - CAP);
      assert.equal(val(end, 'waymark_fetcher_jobs_in_flight'), 0);
      assert.equal(fetcher.exitCode, null, 'the fetcher is still running');
      assert.match(log, /beyond the fetcher's capacity/, 'the drop is logged');
      assert.equal(log.match(/beyond the fetcher's capacity/g).length, 1, 'the warning is rate-limited');
      t.diagnostic(`flood of ${N}: ${ran.length} ran, ${over} dropped, max in flight ${maxInFlight}`);
    } finally {
      z.child.kill('SIGTERM');
      fetcher.kill('SIGTERM');
      const [code] = await fetcherExit;
      assert.equal(code, 0, `fetcher exit on SIGTERM:\n${log.split('\n').slice(-20).join('\n')}`);
      assert.doesNotMatch(log, /AddressSanitizer|LeakSanitizer|runtime error:/);
    }
    await assertHealthy('fetcher flooded by a gateway');
  });

  // ---- bad bumps through Redis ----

  test('bad bumps on the Redis channel are counted by kind and change nothing', T, async () => {
    const d0 = (await stack.metrics('dispatcher')).values;
    const g0 = await gw(stack);
    const bad = {
      empty: ['', '   ', '\n\t'],
      path: ['users/1', '/a/../b', '//evil.example/x', 'http://evil.example/x', '/a b', '/a\u0001b', '/%2e%2e/x', '/a%00b', '/caf\u00e9'],
      json: ['{"path":', '{"nopath": "/x"}', '{"path": 7}', '{"path": null}', '{}'],
      match: ['{"path": "/x", "match": "fuzzy"}', '{"path": "/x", "match": 1}'],
      too_long: [`/${'a'.repeat(5000)}`, JSON.stringify({ path: `/${'b'.repeat(5000)}` })],
    };
    const kindOf = (values, kind) => values.get(`waymark_dispatcher_bad_bumps_total{kind="${kind}"}`) || 0;
    let n = 0;
    // One redis-cli per payload: its arguments carry any byte (control characters too).
    for (const payloads of Object.values(bad)) for (const p of payloads) { await stack.publish(p); n++; }
    await poll(async () => {
      const v = (await stack.metrics('dispatcher')).values;
      return metricSum(v, /^waymark_dispatcher_bad_bumps_total$/) >= metricSum(d0, /^waymark_dispatcher_bad_bumps_total$/) + n;
    }, 10000, `${n} bad bumps counted`);
    const d1 = (await stack.metrics('dispatcher')).values;
    for (const [kind, payloads] of Object.entries(bad)) {
      assert.equal(kindOf(d1, kind) - kindOf(d0, kind), payloads.length, `bad_bumps_total{kind="${kind}"}`);
    }
    assert.equal(val(d1, 'waymark_dispatcher_bumps_published_total'), val(d0, 'waymark_dispatcher_bumps_published_total'),
      'no bad bump is published');
    // A good bump after them arrives (so they were all handled) and is the only one counted.
    await assertHealthy('bad bumps');
    const g1 = await gw(stack);
    assert.equal(val(g1, 'waymark_gateway_bumps_received_total') - val(g0, 'waymark_gateway_bumps_received_total'), 1);
    assert.ok(stack.proc('dispatcher').running);
  });
});

// ---- a backend that answers garbage ----

// A raw TCP "backend": each request path picks a way to misbehave. /pages/* answers properly.
function garbageBackend() {
  let versionOk = 1;
  const srv = net.createServer((sock) => {
    let buf = '';
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const p = buf.slice(0, end).split(' ')[1] || '/';
      buf = '';
      const ok = (body, extra = '') => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      if (p.startsWith('/short')) {
        sock.end('HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\nshort');
      } else if (p.startsWith('/nothttp')) {
        sock.end(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n\u0000\u00ff\u00fe garbage\r\n\r\n', 'latin1'));
      } else if (p.startsWith('/hangup')) {
        sock.destroy();
      } else if (p.startsWith('/badstatus')) {
        sock.end('HTTP/1.1 9999 What\r\nContent-Length: 2\r\n\r\nhi');
      } else if (p.startsWith('/badchunk')) {
        sock.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n');
      } else if (p.startsWith('/emptyheader')) {
        sock.write(ok(JSON.stringify({ path: p }), 'X-Empty:\r\nX-Spaces:    \r\n'));
      } else if (p.startsWith('/ok')) {
        sock.write(ok(JSON.stringify({ path: p, version: versionOk })));
      } else {
        sock.write(ok(JSON.stringify({ path: p, version: 1 })));
      }
    });
  });
  return {
    srv,
    setOk(v) { versionOk = v; },
    async listen() {
      srv.listen(0, '127.0.0.1');
      await once(srv, 'listening');
      return `http://127.0.0.1:${srv.address().port}`;
    },
    async close() {
      srv.close();
    },
  };
}

describe('robustness: a backend answering garbage', { timeout: 180000 }, () => {
  test('garbage answers reach the client as 502, other topics keep working', { timeout: 90000 }, async () => {
    const gb = garbageBackend();
    const url = await gb.listen();
    // withStack also requires a clean shutdown and no token in the logs.
    try {
      await withStack({ backendUrl: url, extraEnv: { WAYMARK_FETCH_TIMEOUT_MS: '3000' } }, async (s) => {
        const c = await s.connect({ token: 'tok-garbage', serializer: 'json' });
        const okSub = await c.subscribe('/ok/1', { get_retained: true });
        await okSub.waitEvent((e) => e.kwargs.status === 200);
        for (const t of ['/short', '/nothttp', '/hangup', '/badstatus', '/badchunk']) {
          const sub = await c.subscribe(t, { get_retained: true });
          const ev = await sub.waitEvent(() => true, 15000);
          assert.ok(ev.kwargs.status >= 500 && ev.kwargs.status <= 504, `${t}: status ${ev.kwargs.status}`);
          if (t !== '/badstatus') assert.equal(ev.kwargs.status, 502, `${t}: ${JSON.stringify(ev.kwargs)}`);
          assert.equal(typeof ev.kwargs.error, 'string', `${t}: a reason is given`);
          assert.ok(s.proc('gateway').running && s.procs.get('fetcher1').running, `alive after ${t}`);
        }
        // Empty header values are legal HTTP and pass through.
        const eh = await c.subscribe('/emptyheader', { get_retained: true });
        const eev = await eh.waitEvent(() => true, 15000);
        assert.equal(eev.kwargs.status, 200, JSON.stringify(eev.kwargs));
        // The good topic still gets its bumps.
        gb.setOk(7);
        await s.publish('/ok/1');
        await okSub.waitEvent((e) => e.kwargs.status === 200 && bodyJson(e.kwargs).version === 7, 15000);
        const m = (await s.metrics('gateway')).values;
        assert.ok((m.get('waymark_gateway_results_total{class="5xx"}') || 0) >= 5 ||
          metricSum(m, /^waymark_gateway_results_total$/) >= 6, 'results counted');
      });
    } finally {
      await gb.close();
    }
  });
});
