// Ordering and session-lifecycle guarantees of the gateway, end to end with raw JSON WAMP
// clients: a backed-up client's re-SUBSCRIBE gets SUBSCRIBED before its retained EVENT, a
// queued snapshot replaced by a bump page is still delivered as retained, publication ids
// are random, a client ERROR is a protocol violation, and a socket that never joins is closed.
//
// "Backed up" is made deterministic without sleeps: the client stops reading its socket,
// each bump is awaited at the backend (/__test/wait) and at the gateway (results counter),
// and the queue is known to hold an undelivered page once events_replaced moves.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import {
  bodyJson, metricSum, poll, RawWamp, shareStack,
} from './harness.mjs';

const ABORT = 3;
const ERROR = 8;
const SUBSCRIBE = 32;
const SUBSCRIBED = 33;
const EVENT = 36;
const MAX_ID = 2 ** 53;
const BIG_BYTES = 900000;           // under the 1 MiB message cap; a few fill the socket buffers
const MAX_BACKUP_BUMPS = 80;        // bumps allowed before "the queue never backed up"

// Big page bodies are only counted: the tests look at order and details, not bytes.
function compactBigBody(m) {
  if (Array.isArray(m) && m[0] === EVENT && m[5] && typeof m[5].body === 'string' && m[5].body.length > 65536) {
    m[5] = { ...m[5], body: undefined, bodyLength: m[5].body.length };
  }
  return m;
}

// ---- one stack for the file ----

let stack;
const clients = new Set();

async function rawJoined(token = 'tok-alice') {
  const c = new RawWamp(stack.wsUrl, ['wamp.2.json'], { transform: compactBigBody });
  clients.add(c);
  await c.opened();
  await c.join(token);
  return c;
}

async function gwValues() { return (await stack.metrics('gateway')).values; }
const replaced = (v) => metricSum(v, /^waymark_gateway_events_replaced_total$/);
const results2xx = (v) => v.get('waymark_gateway_results_total{class="2xx"}') || 0;
const violations = (v) => metricSum(v, /^waymark_gateway_protocol_violations_total$/);

// Resolves with the gateway metrics once pred(values) holds.
function gwUntil(pred, label, timeoutMs = 15000) {
  return poll(async () => {
    const v = await gwValues();
    return pred(v) ? v : null;
  }, timeoutMs, label);
}

// Bumps `base` (whose page the paused client c is subscribed to) one fetch at a time until
// the gateway's queue for c holds an undelivered page: two bumps in a row each replaced a
// queued EVENT, so the socket is not just momentarily slow. Each fetch is awaited at the
// backend and its result at the gateway before the next bump (no coalescing, no sleeps).
async function backUp(base) {
  let seen = (await stack.requests(base)).length;
  let v = await gwValues();
  let inARow = 0;
  for (let i = 0; i < MAX_BACKUP_BUMPS; i++) {
    const rep = replaced(v);
    const res = results2xx(v);
    await stack.publish(base);
    seen = await stack.waitRequests(base, seen + 1, 15000);
    v = await gwUntil((x) => results2xx(x) > res, `the result of bump ${i + 1} of ${base} at the gateway`);
    inARow = replaced(v) > rep ? inARow + 1 : 0;
    if (inARow === 2) return { bumps: i + 1, values: v };
  }
  throw new Error(`the gateway's queue never backed up after ${MAX_BACKUP_BUMPS} bumps of ${base}`);
}

const isEvent = (sub) => (m) => m[0] === EVENT && m[1] === sub;
const isRetained = (m) => m[3] && m[3].retained === true;

describe('ordering and session lifecycle', { timeout: 600000 }, () => {
  // Registered first, so it runs before the stack stops.
  after(() => { for (const c of clients) c.close(); });
  // backUp bumps the same unchanged /big page over and over: push every refetch.
  shareStack((s) => { stack = s; }, {
    stackOpts: { fetchers: 1, extraEnv: { WAYMARK_PUSH_UNCHANGED: '1' } }, startTimeoutMs: 90000, check: true,
  });

  test('a backed-up re-SUBSCRIBE gets SUBSCRIBED before its retained EVENT', { timeout: 180000 }, async (t) => {
    const base = '/big/order';
    const topic = `${base}?bytes=${BIG_BYTES}`;
    const c = await rawJoined();
    const sub = await c.subscribe(1, topic);
    c.pause();
    t.diagnostic(`queue backed up after ${(await backUp(base)).bumps} bumps`);

    // The re-SUBSCRIBE: SUBSCRIBED is queued, then the snapshot replaces the queued page.
    const v0 = await gwValues();
    const seen = (await stack.requests(base)).length;
    c.send([SUBSCRIBE, 2, { get_retained: true }, topic]);
    await stack.waitRequests(base, seen + 1, 15000);
    await gwUntil((v) => results2xx(v) > results2xx(v0) && replaced(v) > replaced(v0),
      'the snapshot to replace the queued page');
    assert.equal(c.indexOf((m) => m[0] === SUBSCRIBED && m[1] === 2), -1,
      'SUBSCRIBED 2 was still queued when the snapshot arrived (the client was backed up)');

    c.resume();
    const subd = await c.waitMsg((m) => m[0] === SUBSCRIBED && m[1] === 2, 30000, 'SUBSCRIBED 2');
    const ret = await c.waitMsg((m) => isEvent(sub)(m) && isRetained(m), 30000, 'a retained EVENT');
    assert.equal(subd[2], sub, 're-SUBSCRIBE answers the same subscription id');
    const iSubd = c.msgs.indexOf(subd);
    const iRet = c.msgs.indexOf(ret);
    const order = c.msgs.map((m) => (m[0] === EVENT ? `EVENT${isRetained(m) ? '(retained)' : ''}` : `${m[0]}/${m[1]}`));
    assert.ok(iSubd < iRet, `SUBSCRIBED 2 (#${iSubd}) must precede the retained EVENT (#${iRet}): ${order.join(' ')}`);
    assert.equal(ret[5].status, 200);
    assert.equal(ret[5].bodyLength, BIG_BYTES);
    c.close();
  });

  test('a queued snapshot replaced by a bump page is still delivered as retained, with the newer page', { timeout: 180000 }, async (t) => {
    const big = '/big/retained';
    const snap = '/pages/snap';
    const c = await rawJoined();
    await c.subscribe(1, `${big}?bytes=${BIG_BYTES}`);
    c.pause();
    t.diagnostic(`queue backed up after ${(await backUp(big)).bumps} bumps`);

    // The snapshot (version 1) is fetched and queued behind the backed-up page.
    await stack.setVersion(snap, 1);
    const v0 = await gwValues();
    c.send([SUBSCRIBE, 2, { get_retained: true }, snap]);
    await stack.waitRequests(snap, 1, 15000);
    await gwUntil((v) => results2xx(v) > results2xx(v0), 'the snapshot result at the gateway');

    // A bump fetches version 2, which replaces the still queued snapshot.
    await stack.setVersion(snap, 2);
    const v1 = await gwValues();
    await stack.publish(snap);
    await stack.waitRequests(snap, 2, 15000);
    await gwUntil((v) => results2xx(v) > results2xx(v1) && replaced(v) > replaced(v1),
      'the bump page to replace the queued snapshot');
    assert.equal(c.indexOf((m) => m[0] === SUBSCRIBED && m[1] === 2), -1,
      'nothing of the new subscription was read before resuming');

    c.resume();
    const sub2 = (await c.waitMsg((m) => m[0] === SUBSCRIBED && m[1] === 2, 30000, 'SUBSCRIBED 2'))[2];
    const ev = await c.waitMsg(isEvent(sub2), 30000, `an EVENT for ${snap}`);
    assert.equal(ev[3].topic, snap);
    assert.equal(ev[3].retained, true, `the first EVENT for ${snap} is the snapshot: ${JSON.stringify(ev[3])}`);
    assert.equal(ev[5].status, 200);
    assert.equal(bodyJson(ev[5]).version, 2, 'the snapshot carries the newer page');
    assert.equal(c.msgs.filter(isEvent(sub2)).length, 1, 'the replaced snapshot is not sent as well');
    c.close();
  });

  test('publication ids are random: distinct, in [1, 2^53], no +1 steps', { timeout: 60000 }, async () => {
    const topic = '/pages/pubids';
    const c = await rawJoined();
    const sub = await c.subscribe(1, topic);
    const ids = [];
    for (let version = 1; version <= 20; version++) {
      await stack.setVersion(topic, version);
      await stack.publish(topic);
      const ev = await c.waitMsg((m) => isEvent(sub)(m) && bodyJson(m[5]).version === version,
        10000, `the EVENT of version ${version}`);
      ids.push(ev[2]);
    }
    for (const id of ids) {
      assert.ok(Number.isSafeInteger(id) || id === MAX_ID, `publication id ${id} is an integer`);
      assert.ok(id >= 1 && id <= MAX_ID, `publication id ${id} in [1, 2^53]`);
    }
    assert.equal(new Set(ids).size, ids.length, `publication ids are distinct: ${ids}`);
    // A counter gives +1 steps; random ids in 2^53 make even one such step a 2^-53 chance.
    const steps = ids.slice(1).filter((id, i) => id - ids[i] === 1).length;
    assert.equal(steps, 0, `consecutive EVENTs have consecutive publication ids: ${ids}`);
    c.close();
  });

  test('an ERROR from a client in an established session is a protocol violation', { timeout: 30000 }, async () => {
    const v0 = await gwValues();
    const c = await rawJoined();
    c.send([ERROR, 68, 1, {}, 'x.y']);
    const m = await c.waitMsg((x) => x[0] === ABORT, 5000, 'ABORT');
    assert.equal(m[2], 'wamp.error.protocol_violation', `ABORT reason: ${JSON.stringify(m)}`);
    assert.equal(typeof m[1], 'object');
    await c.waitClose(5000);
    await gwUntil((v) => violations(v) > violations(v0), 'protocol_violations_total to move');
  });

  test('a websocket that never sends HELLO is closed after ~10 s; a joined one is not', { timeout: 60000 }, async () => {
    const topic = '/pages/join-deadline';
    // The joined client opens first: had its own join deadline not been cleared, it
    // would fire no later than the silent one's.
    const b = await rawJoined();
    const joinedAt = Date.now();
    const sub = await b.subscribe(1, topic);

    const a = new RawWamp(stack.wsUrl, ['wamp.2.json']);
    clients.add(a);
    const openedAt = await a.opened();
    const closed = await a.waitClose(25000);
    const took = closed.at - openedAt;
    assert.ok(took >= 8000 && took <= 20000, `silent websocket closed after ${took} ms, want 8-20 s`);
    assert.deepEqual(a.msgs, [], 'nothing is sent to a socket that never said HELLO');
    assert.equal(b.closeInfo, null, 'the joined session survived the join deadline');

    // Absence of a close needs a clock, not a sync point: look again 12 s after joining.
    const left = joinedAt + 12000 - Date.now();
    if (left > 0) await delay(left);
    await stack.setVersion(topic, 7);
    await stack.publish(topic);
    const ev = await b.waitMsg((m) => isEvent(sub)(m) && bodyJson(m[5]).version === 7, 10000,
      'a bumped page on the joined session');
    assert.equal(ev[5].status, 200);
    assert.equal(b.closeInfo, null, 'the joined session is still open 12 s after joining');
    b.close();
  });
});
