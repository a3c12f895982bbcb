// SUBSCRIBE option `_accept` (alias `accept`) end to end: the backend sees the Accept
// header the subscription asked for (`*/*` without it), sessions that differ only in
// Accept get separate fetches, and a value that cannot go into a header is refused.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyJson, metricSum, poll, shareStack, shutdownProblems } from './harness.mjs';

const SERIALIZERS = ['json', 'msgpack'];
const T = { timeout: 30000 };
let stack;

// The Accept values the backend saw for path p, in order.
async function acceptsSeen(p) {
  return (await stack.requests(p)).map((r) => r.headers.accept);
}

async function gauge(name) {
  const m = await stack.metrics('gateway');
  return metricSum(m.values, new RegExp(`^waymark_gateway_${name}$`));
}

describe('SUBSCRIBE accept option', { timeout: 180000 }, () => {
  shareStack((s) => { stack = s; });

  for (const ser of SERIALIZERS) {
    test(`[${ser}] _accept and accept set the fetch's Accept header; absent means */*`, T, async () => {
      const topic = `/pages/accept-${ser}`;
      await stack.setVersion(topic, 1);
      const html = await stack.connect({ token: 'tok-alice', serializer: ser });
      const any = await stack.connect({ token: 'tok-alice', serializer: ser });
      const xml = await stack.connect({ token: 'tok-alice', serializer: ser });
      const sh = await html.subscribe(topic, { get_retained: true, _accept: 'text/html' });
      await sh.waitEvent();
      assert.deepEqual(await acceptsSeen(topic), ['text/html']);
      const sa = await any.subscribe(topic, { get_retained: true });
      await sa.waitEvent();
      assert.deepEqual(await acceptsSeen(topic), ['text/html', '*/*']);
      const sx = await xml.subscribe(topic, { get_retained: true, accept: 'application/xml;q=0.9' });
      await sx.waitEvent();
      assert.deepEqual(await acceptsSeen(topic), ['text/html', '*/*', 'application/xml;q=0.9']);
      // Same token, three Accepts: three groups on one topic.
      assert.equal(await gauge('groups'), 3);
      assert.equal(await gauge('subscriptions'), 3);

      // A bump fetches once per Accept, each page reaches only its own sessions.
      await stack.setVersion(topic, 2);
      await stack.publish(topic);
      for (const sub of [sh, sa, sx]) await sub.waitEvent((e) => bodyJson(e.kwargs).version === 2);
      await stack.waitRequests(topic, 6);
      const later = (await acceptsSeen(topic)).slice(3).sort();
      assert.deepEqual(later, ['*/*', 'application/xml;q=0.9', 'text/html']);

      // Subscribing again with another Accept moves the session to that group.
      const again = await any.subscribe(topic, { _accept: 'text/html' });
      assert.equal(again.id, sa.id);
      assert.equal(await gauge('groups'), 2);
      assert.equal(await gauge('subscriptions'), 3);
      for (const s of [html, any, xml]) await s.close();
      // The gateway frees a session when its socket closes, which the client cannot see.
      await poll(async () => (await gauge('groups')) === 0, 5000, 'groups back to 0');
    });

    test(`[${ser}] an Accept that cannot go into a header gets ERROR invalid_argument`, T, async () => {
      const topic = `/pages/accept-bad-${ser}`;
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const bad = [
        { _accept: 'text/html\r\nX-Injected: 1' },
        { _accept: 'text/html\n' },
        { _accept: 'x'.repeat(300) },
        { _accept: '' },
        { _accept: 'tëxt/html' },
        { accept: 42 },
        { _accept: ['text/html'] },
      ];
      for (const opts of bad) {
        await assert.rejects(s.subscribe(topic, { get_retained: true, ...opts }), (e) => {
          assert.equal(e.error, 'wamp.error.invalid_argument', JSON.stringify(opts));
          assert.ok(e.args && typeof e.args[0] === 'string' && /accept/.test(e.args[0]),
            `a reason: ${JSON.stringify(e.args)}`);
          return true;
        });
      }
      // The session is still fine, 256 bytes are allowed, and nothing bad was fetched.
      const longest = `text/plain;${'a'.repeat(245)}`;
      assert.equal(longest.length, 256);
      const sub = await s.subscribe(topic, { get_retained: true, _accept: longest });
      await sub.waitEvent();
      assert.deepEqual(await acceptsSeen(topic), [longest]);
      for (const r of await stack.requests(topic)) assert.equal(r.headers['x-injected'], undefined);
      await s.close();
    });
  }

  test('the gateway stops cleanly', T, async () => {
    const stopped = await stack.stop();
    stack = null;
    assert.deepEqual(shutdownProblems(stopped), []);
  });
});
