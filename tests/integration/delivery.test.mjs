// Bumps to pages end to end: bursts are coalesced and the last page wins, query-string and
// prefix matching, binary and large bodies, redirects delivered as they are.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCleanStop, bodyBytes, bodyJson, shareStack } from './harness.mjs';

const SERIALIZERS = ['json', 'msgpack'];
const T = { timeout: 30000 };
const BINARY = Buffer.from([0xff, 0x00, 0x80, ...Array.from({ length: 253 }, (_, i) => i)]);
let stack;

describe('delivery', { timeout: 240000 }, () => {
  shareStack((s) => { stack = s; });

  test('a burst of 500 bumps costs far fewer GETs and ends with the final version', { timeout: 60000 }, async (t) => {
    const topic = '/users/51';
    const BUMPS = 500;
    // A slow page (100 ms) so that bumps pile up while a fetch is in flight.
    await stack.setVersion(topic, 0, { delay_ms: 100 });
    const a = await stack.connect({ token: 'tok-alice', serializer: 'json' });
    const b = await stack.connect({ token: 'tok-alice', serializer: 'msgpack' });
    const sa = await a.subscribe(topic);
    const sb = await b.subscribe(topic);
    const pub = stack.publisher();
    try {
      // Each bump follows a version change, so only a page fetched after the last bump
      // can carry the final version.
      for (let v = 1; v <= BUMPS; v++) {
        await stack.setVersion(topic, v);
        pub.publish(topic);
      }
      await pub.flush();
    } finally {
      await pub.close();
    }
    const ea = await sa.waitEvent((e) => bodyJson(e.kwargs).version === BUMPS, 15000);
    const eb = await sb.waitEvent((e) => bodyJson(e.kwargs).version === BUMPS, 15000);
    assert.equal(ea.kwargs.status, 200);
    assert.equal(eb.kwargs.status, 200);
    const gets = (await stack.requests(topic)).length;
    t.diagnostic(`${BUMPS} bumps -> ${gets} backend GETs, ${sa.events.length} + ${sb.events.length} events`);
    assert.ok(gets >= 1 && gets < 50, `${gets} backend GETs for ${BUMPS} bumps`);
    // Versions only move forward for each session (latest wins, no stale page last).
    for (const sub of [sa, sb]) {
      const versions = sub.events.map((e) => bodyJson(e.kwargs).version);
      assert.deepEqual([...versions].sort((x, y) => x - y), versions, `in order: ${versions}`);
      assert.equal(versions.at(-1), BUMPS);
      assert.ok(versions.length <= gets + 1, `${versions.length} events for ${gets} GETs`);
    }
    await stack.setVersion(topic, BUMPS, { delay_ms: 0 });
    await a.close();
    await b.close();
  });

  for (const ser of SERIALIZERS) {
    test(`[${ser}] a query-string topic gets a plain bump; a bump with a query only its exact topic`, T, async () => {
      const base = ser === 'json' ? '/users/61' : '/users/63';
      const topic = `${base}?fields=name`;
      const other = `${base}?fields=email`;
      const s = await stack.connect({ token: 'tok-bob', serializer: ser });
      const sub = await s.subscribe(topic);
      const osub = await s.subscribe(other);
      await stack.setVersion(base, 2);
      await stack.publish(base);
      const ev = await sub.waitEvent((e) => bodyJson(e.kwargs).version === 2);
      const page = bodyJson(ev.kwargs);
      assert.equal(page.name, `User ${base.split('/')[2]}`);
      assert.equal(page.id, undefined, 'the backend got the query string');
      assert.equal(ev.details.topic, topic);
      await osub.waitEvent((e) => bodyJson(e.kwargs).version === 2);
      // Exact-topic bumps: the ?fields=email one must not fetch the ?fields=name topic.
      await stack.setVersion(base, 3);
      await stack.publish(other);
      await osub.waitEvent((e) => bodyJson(e.kwargs).version === 3);
      await stack.setVersion(base, 4);
      await stack.publish(topic);
      await sub.waitEvent((e) => bodyJson(e.kwargs).version === 4);
      const urls = (await stack.requests(base)).map((r) => r.url);
      assert.equal(urls.filter((u) => u === topic).length, 2, `requests: ${urls}`);
      assert.equal(urls.filter((u) => u === other).length, 2, `requests: ${urls}`);
      assert.ok(!sub.events.some((e) => bodyJson(e.kwargs).version === 3), 'no page for the other query');
      await s.close();
    });

    test(`[${ser}] a prefix bump reaches /users/1 and /users/2`, T, async () => {
      const v = ser === 'json' ? 20 : 21;
      const alice = await stack.connect({ token: 'tok-alice', serializer: ser });
      const bob = await stack.connect({ token: 'tok-bob', serializer: ser });
      const s1 = await alice.subscribe('/users/1');
      const s2 = await bob.subscribe('/users/2');
      const outside = await alice.subscribe(`/pages/users-${ser}`, { get_retained: true });
      await outside.waitEvent();
      await stack.setVersion('/users/1', v);
      await stack.setVersion('/users/2', v);
      if (ser === 'json') await stack.publish({ path: '/users/', match: 'prefix' });
      else stack.bumpCli('/users/', ['--prefix']);
      const e1 = await s1.waitEvent((e) => bodyJson(e.kwargs).version === v);
      const e2 = await s2.waitEvent((e) => bodyJson(e.kwargs).version === v);
      assert.equal(bodyJson(e1.kwargs).email, 'user1@example.test');
      assert.equal(bodyJson(e2.kwargs).email, 'user2@example.test');
      assert.equal((await stack.requests(`/pages/users-${ser}`)).length, 1, 'a topic outside the prefix is not fetched');
      await alice.close();
      await bob.close();
    });

    test(`[${ser}] a binary body arrives as binary, intact`, T, async () => {
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const sub = await s.subscribe(`/binary/${ser}`, { get_retained: true });
      const ev = await sub.waitEvent();
      assert.equal(ev.kwargs.status, 200);
      assert.equal(ev.kwargs.headers['content-type'], 'application/octet-stream');
      if (ser === 'msgpack') assert.ok(ev.kwargs.body instanceof Uint8Array, 'msgpack bin');
      else assert.ok(typeof ev.kwargs.body === 'string' && ev.kwargs.body.startsWith('\u0000'), 'WAMP JSON binary convention');
      assert.ok(bodyBytes(ev.kwargs).equals(BINARY), 'bytes intact');
      await s.close();
    });

    test(`[${ser}] large pages: 300 kB arrives whole, over the cap gives 502`, T, async () => {
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const big = await s.subscribe(`/big/${ser}?bytes=300000`, { get_retained: true });
      const ev = await big.waitEvent(() => true, 10000);
      assert.equal(ev.kwargs.status, 200);
      assert.equal(typeof ev.kwargs.body, 'string');
      assert.equal(ev.kwargs.body.length, 300000);
      const huge = await s.subscribe(`/big/${ser}?bytes=3000000`, { get_retained: true });
      const ev2 = await huge.waitEvent(() => true, 10000);
      assert.equal(ev2.kwargs.status, 502);
      assert.ok(s.isOpen);
      await s.close();
    });

    test(`[${ser}] a redirect is delivered as it is, not followed`, T, async () => {
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const sub = await s.subscribe('/status/302', { get_retained: true });
      const ev = await sub.waitEvent();
      assert.equal(ev.kwargs.status, 302);
      assert.equal(ev.kwargs.headers.location, '/pages/redirected');
      assert.equal((await stack.requests('/pages/redirected')).length, 0);
      await s.close();
    });
  }

  test('every daemon stops cleanly on SIGTERM and no log file contains a token', T, async () => {
    const stopped = await stack.stop();
    stack = null;
    assertCleanStop(stopped);
  });
});
