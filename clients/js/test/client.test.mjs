// The Waymark JS client in Node against the real stack (redis-server, the test backend,
// the dispatcher, the gateway and fetchers, started by tests/integration/harness.mjs):
// snapshots, pushed pages, unwatch, setToken, binary bodies, both serializers, errors,
// and a gateway restart that the client rides through without missing the update.
// Run: node --test clients/js/test/   (needs make, cd clients/js && npm ci, cd tests && npm ci)
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { poll, Stack, waitFor } from '../../../tests/integration/harness.mjs';
import { connect, Page } from '../src/index.js';

// Autobahn|JS warns on stderr about every closed connection; the tests close on purpose.
const abLog = createRequire(import.meta.url)('autobahn/lib/log.js');
abLog.warn = process.env.WAYMARK_TEST_VERBOSE ? console.warn.bind(console) : () => {};

const T = { timeout: 30000 };

// A client whose pages, statuses and errors are recorded, with waits that have deadlines.
function recorder(stack, opts = {}) {
  const rec = new EventEmitter();
  rec.setMaxListeners(100);
  rec.pages = [];
  rec.statuses = [];
  rec.errors = [];
  rec.client = connect({
    url: stack.wsUrl,
    token: 'tok-alice',
    retryInitialMs: 100,
    retryMaxMs: 500,
    ...opts,
    onStatus: (s, info) => { rec.statuses.push({ s, info }); rec.emit('change'); },
    onError: (e) => { rec.errors.push(e); rec.emit('change'); },
  });
  rec.watch = (path, wopts) => rec.client.watch(path, (p) => { rec.pages.push(p); rec.emit('change'); }, wopts);
  rec.waitPage = (pred, label, timeoutMs = 10000, from = 0) =>
    waitFor(() => rec.pages.slice(from).find(pred), timeoutMs, [rec], label);
  rec.waitStatus = (s, from = 0, timeoutMs = 15000) =>
    waitFor(() => rec.statuses.slice(from).find((x) => x.s === s), timeoutMs, [rec], `status ${s}`);
  return rec;
}

describe('Waymark JS client (Node, real stack)', { timeout: 180000 }, () => {
  let stack;
  const clients = [];
  const make = (opts) => {
    const r = recorder(stack, opts);
    clients.push(r.client);
    return r;
  };

  before(async () => {
    stack = await new Stack({ fetchers: 1 }).start();
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    if (stack) await stack.stop();
  });

  test('connect, then a snapshot of the page rendered for this token', T, async () => {
    const r = make();
    r.watch('/users/1');
    const p = await r.waitPage((x) => x.topic === '/users/1', 'snapshot of /users/1');
    assert.ok(p instanceof Page);
    assert.equal(p.status, 200);
    assert.equal(p.retained, true);
    assert.ok(p.receivedAt instanceof Date);
    assert.match(p.headers['content-type'], /application\/json/);
    const body = p.json();
    assert.equal(body.viewer, 'alice');
    assert.equal(body.email, 'user1@example.test', 'alice owns /users/1 and sees the email');
    assert.deepEqual(r.statuses.map((x) => x.s).slice(0, 2), ['connecting', 'open']);
    assert.equal(r.client.isOpen, true);
  });

  test('a bump pushes the new page; two tokens see their own view', T, async () => {
    const alice = make();
    const bob = make({ token: 'tok-bob' });
    alice.watch('/users/3');
    bob.watch('/users/3');
    await alice.waitPage((p) => p.retained, 'alice snapshot');
    await bob.waitPage((p) => p.retained, 'bob snapshot');
    await stack.setVersion('/users/3', 7);
    await stack.publish('/users/3');
    const a = await alice.waitPage((p) => !p.retained && p.json().version === 7, 'alice v7');
    const b = await bob.waitPage((p) => !p.retained && p.json().version === 7, 'bob v7');
    assert.equal(a.json().viewer, 'alice');
    assert.equal(a.json().email, 'user3@example.test');
    assert.equal(b.json().viewer, 'bob');
    assert.equal(b.json().email, undefined, 'bob does not own /users/3');
  });

  test('snapshot: false waits for the first bump', T, async () => {
    const r = make();
    await r.client.ready();
    r.watch('/pages/no-snapshot', { snapshot: false });
    // The fence: a second watch with a snapshot, subscribed after the first one.
    r.watch('/pages/fence-1');
    await r.waitPage((p) => p.topic === '/pages/fence-1', 'fence snapshot');
    assert.equal(r.pages.filter((p) => p.topic === '/pages/no-snapshot').length, 0);
    await stack.publish('/pages/no-snapshot');
    const p = await r.waitPage((x) => x.topic === '/pages/no-snapshot', 'pushed page');
    assert.equal(p.retained, false);
  });

  test('unwatch stops the pages and the fetches', T, async () => {
    const r = make();
    const stop = r.watch('/pages/unwatched');
    r.watch('/pages/fence-2');
    await r.waitPage((p) => p.topic === '/pages/unwatched', 'snapshot');
    await r.waitPage((p) => p.topic === '/pages/fence-2', 'fence snapshot');
    await stop();
    const fetchedBefore = (await stack.requests('/pages/unwatched')).length;
    const n = r.pages.length;
    await stack.publish('/pages/unwatched');
    await stack.setVersion('/pages/fence-2', 2);   // a page is pushed only when it changed
    await stack.publish('/pages/fence-2');
    await r.waitPage((p) => p.topic === '/pages/fence-2' && !p.retained, 'fence page', 10000, n);
    assert.equal(r.pages.slice(n).filter((p) => p.topic === '/pages/unwatched').length, 0);
    assert.equal((await stack.requests('/pages/unwatched')).length, fetchedBefore, 'no fetch for an unwatched topic');
  });

  test('setToken: later pages are fetched with the new token', T, async () => {
    const r = make();
    r.watch('/users/5');
    const first = await r.waitPage((p) => p.retained, 'snapshot');
    assert.equal(first.json().viewer, 'alice');
    assert.equal(await r.client.setToken('tok-bob'), true);
    await stack.publish('/users/5');
    const p = await r.waitPage((x) => !x.retained, 'page after setToken');
    assert.equal(p.json().viewer, 'bob');
    assert.equal(p.json().email, undefined);
  });

  test('a 403 and a binary body arrive as pages, over JSON and msgpack', T, async () => {
    for (const serializer of ['json', 'msgpack']) {
      const r = make({ token: 'tok-nobody', serializer });
      r.watch('/users/1');
      r.watch('/binary');
      const denied = await r.waitPage((p) => p.topic === '/users/1', `${serializer}: 403 page`);
      assert.equal(denied.status, 403);
      assert.equal(denied.ok, false);
      const bin = await r.waitPage((p) => p.topic === '/binary', `${serializer}: binary page`);
      assert.ok(bin.body instanceof Uint8Array, `${serializer}: body is bytes`);
      assert.equal(bin.body.length, 256);
      assert.deepEqual([...bin.body.slice(0, 4)], [0xff, 0x00, 0x80, 0x00]);
    }
  });

  test('an invalid path reaches onError and the watch\'s own onError', T, async () => {
    const r = make();
    let own = null;
    r.client.watch('/a/../etc/passwd', () => assert.fail('no page for an invalid path'), {
      onError: (e) => { own = e; r.emit('change'); },
    });
    await waitFor(() => own && r.errors.length, 10000, [r], 'errors');
    assert.equal(own.error, 'wamp.error.invalid_uri');
    assert.equal(own.topic, '/a/../etc/passwd');
    assert.equal(r.errors[0], own);
    assert.throws(() => r.client.watch('users/1', () => {}), TypeError);
  });

  test('close() ends the session for good', T, async () => {
    const r = make();
    await r.client.ready();
    await r.client.close();
    assert.equal(r.client.status, 'closed');
    assert.equal(r.client.isOpen, false);
    await assert.rejects(r.client.ready());
  });

  test('after a gateway restart the client reconnects and gets the update it missed', { timeout: 60000 }, async () => {
    const r = make();
    r.watch('/users/9');
    await r.waitPage((p) => p.retained, 'snapshot');
    const opens = r.statuses.filter((x) => x.s === 'open').length;
    const mark = r.statuses.length;
    await stack.proc('gateway').stop();
    await r.waitStatus('disconnected', mark);
    // The change happens while the client is away: its bump reaches no gateway.
    await stack.setVersion('/users/9', 42);
    await stack.publish('/users/9');
    await stack.startProc('gateway');
    await waitFor(() => r.statuses.filter((x) => x.s === 'open').length > opens, 20000, [r], 'reopen');
    const p = await r.waitPage((x) => x.json().version === 42, 'the missed update', 15000);
    assert.equal(p.retained, true, 'delivered by the re-subscribe with get_retained');
    assert.equal(p.json().viewer, 'alice');
    const reopened = r.statuses.filter((x) => x.s === 'open').at(-1);
    assert.equal(reopened.info.reconnect, true);
    // And pushes work on the new session. ZeroMQ drops what is published before the new
    // gateway's subscription reaches the dispatcher, so bump until one arrives.
    await stack.setVersion('/users/9', 43);
    await poll(async () => {
      await stack.publish('/users/9');
      try {
        return await r.waitPage((x) => !x.retained && x.json().version === 43, 'push', 300);
      } catch {
        return false;
      }
    }, 15000, 'a push after the reconnect', 0);
  });
});
