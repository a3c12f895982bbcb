// Deployment shapes and settings end to end: two gateways sharing one fetcher pool (each
// result must go back to the gateway that sent the job), and a gateway configured for
// cookie credentials with anonymous sessions allowed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyJson, withStack } from './harness.mjs';

const T = { timeout: 60000 };

describe('topology and settings', { timeout: 180000 }, () => {
  test('two gateways share one dispatcher and one fetcher pool', T, () => withStack({ gateways: 2, fetchers: 2 }, async (stack) => {
    const N = 10;
    const topics = Array.from({ length: N }, (_, i) => `/users/${101 + 2 * i}`); // odd: alice owns them
    const a = await stack.connect({ token: 'tok-alice', serializer: 'json', gateway: 'gateway' });
    const b = await stack.connect({ token: 'tok-bob', serializer: 'msgpack', gateway: 'gateway2' });
    const subsA = [];
    const subsB = [];
    for (const t of topics) {
      subsA.push(await a.subscribe(t));
      subsB.push(await b.subscribe(t));
      await stack.setVersion(t, 6);
    }
    await stack.publish({ path: '/users/1', match: 'prefix' }); // every /users/1xx topic
    for (let i = 0; i < N; i++) {
      const ea = await subsA[i].waitEvent((e) => bodyJson(e.kwargs).version === 6);
      const eb = await subsB[i].waitEvent((e) => bodyJson(e.kwargs).version === 6);
      assert.equal(bodyJson(ea.kwargs).viewer, 'alice');
      assert.ok(bodyJson(ea.kwargs).email, 'alice owns it');
      assert.equal(bodyJson(eb.kwargs).viewer, 'bob');
      assert.equal(bodyJson(eb.kwargs).email, undefined);
    }
    for (const g of ['gateway', 'gateway2']) {
      const m = (await stack.metrics(g)).values;
      assert.equal(m.get('waymark_gateway_fetchers'), 2, `${g} sees both fetchers`);
      assert.ok(m.get('waymark_gateway_events_delivered_total') >= N, `${g} delivered`);
      assert.equal(m.get('waymark_gateway_results_stale_total'), 0, `${g} got no result it did not ask for`);
    }
    for (const f of stack.fetcherNames) {
      const m = (await stack.metrics(f)).values;
      assert.equal(m.get('waymark_fetcher_gateways_connected'), 2, `${f} is linked to both gateways`);
    }
    await a.close();
    await b.close();
  }));

  test('cookie credentials and anonymous sessions, when configured', T, () => withStack({
    fetchers: 1,
    extraEnv: { WAYMARK_AUTH_HEADER: 'Cookie: sid={token}', WAYMARK_ALLOW_ANONYMOUS: '1' },
  }, async (stack) => {
    const s = await stack.connect({ token: 'tok-erin', serializer: 'json' });
    const sub = await s.subscribe('/users/5', { get_retained: true });
    const ev = await sub.waitEvent();
    assert.equal(ev.kwargs.status, 200);
    assert.equal(bodyJson(ev.kwargs).viewer, 'erin');
    const seen = await stack.requests('/users/5');
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers.cookie, 'sid=tok-erin');
    assert.equal(seen[0].headers.authorization, undefined);

    const anon = await stack.connect({ authmethods: ['anonymous'], serializer: 'msgpack' });
    assert.equal(anon.welcome.authmethod, 'anonymous');
    const asub = await anon.subscribe('/users/7', { get_retained: true });
    const aev = await asub.waitEvent();
    assert.equal(aev.kwargs.status, 401, 'no credentials: the backend decides');
    const aseen = await stack.requests('/users/7');
    assert.equal(aseen.length, 1);
    assert.equal(aseen[0].headers.cookie, undefined);
    assert.equal(aseen[0].headers.authorization, undefined);
    assert.equal(aseen[0].headers['x-waymark'], '1');
    await s.close();
    await anon.close();
  }));
});
