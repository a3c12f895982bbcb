// Eventual freshness when things die: a fetcher killed with jobs in flight, Redis and the
// dispatcher restarted, a backend that refuses connections. Each test has its own stack.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyJson, freePort, poll, withStack } from './harness.mjs';

const T = { timeout: 90000 };

describe('failover', { timeout: 300000 }, () => {
  test('kill -9 of a fetcher with slow jobs in flight still delivers every page', T, () => withStack({}, async (stack) => {
    const N = 8;
    const topics = Array.from({ length: N }, (_, i) => `/slow/kill?ms=1500&n=${i}`);
    const json = await stack.connect({ token: 'tok-alice', serializer: 'json' });
    const mp = await stack.connect({ token: 'tok-bob', serializer: 'msgpack' });
    const subs = [];
    for (const t of topics) {
      subs.push(await json.subscribe(t));
      subs.push(await mp.subscribe(t));
    }
    await stack.setVersion('/slow/kill', 2);
    // One plain bump matches every query-string variant: 2 tokens x N topics = 2N jobs.
    await stack.publish('/slow/kill');
    await stack.waitRequests('/slow/kill', 2 * N, 10000);
    // Kill the fetcher that holds the most jobs right now (every job is still in flight:
    // the backend answers after 1.5 s).
    const inFlight = {};
    for (const f of stack.fetcherNames) {
      inFlight[f] = (await stack.metrics(f)).values.get('waymark_fetcher_jobs_in_flight');
    }
    const victim = Object.keys(inFlight).sort((a, b) => inFlight[b] - inFlight[a])[0];
    assert.ok(inFlight[victim] > 0, `jobs in flight: ${JSON.stringify(inFlight)}`);
    await stack.proc(victim).kill('SIGKILL');
    for (const sub of subs) {
      const ev = await sub.waitEvent((e) => e.kwargs.status === 200 && bodyJson(e.kwargs).version === 2, 30000);
      assert.equal(ev.details.topic, sub.topic);
    }
    const gw = (await stack.metrics('gateway')).values;
    assert.ok(gw.get('waymark_gateway_jobs_retried_total') >= inFlight[victim], 'its jobs were retried');
    assert.ok(gw.get('waymark_gateway_fetchers_lost_total') >= 1, 'the gateway noticed the dead fetcher');
    // A restarted fetcher joins the pool again and the next bump is served.
    await stack.startProc(victim);
    await stack.setVersion('/slow/kill', 3);
    await stack.publish('/slow/kill');
    for (const sub of subs) {
      await sub.waitEvent((e) => e.kwargs.status === 200 && bodyJson(e.kwargs).version === 3, 30000);
    }
    await json.close();
    await mp.close();
  }));

  test('a Redis restart and a dispatcher restart are survived', T, () => withStack({}, async (stack) => {
    const topic = '/pages/redis-restart';
    const s = await stack.connect({ token: 'tok-alice', serializer: 'json' });
    const sub = await s.subscribe(topic);
    await stack.setVersion(topic, 1);
    await stack.publish(topic);
    await sub.waitEvent((e) => bodyJson(e.kwargs).version === 1);

    await stack.proc('redis').kill('SIGKILL');
    // Changed while Redis is away: no bump can carry it, the RESYNC after the
    // dispatcher's reconnect must.
    await stack.setVersion(topic, 2);
    await stack.startProc('redis');
    await sub.waitEvent((e) => bodyJson(e.kwargs).version === 2, 30000);
    // A bump after the restart is delivered: wait until the dispatcher is subscribed again.
    await stack.waitHealthy(20000);
    await stack.setVersion(topic, 3);
    const receivers = await stack.publish(topic);
    assert.ok(receivers >= 1, 'the dispatcher is subscribed to the channel again');
    await sub.waitEvent((e) => bodyJson(e.kwargs).version === 3, 15000);

    const dp = (await stack.metrics('dispatcher')).values;
    assert.ok(dp.get('waymark_dispatcher_redis_reconnects_total') >= 1);
    assert.ok(dp.get('waymark_dispatcher_resyncs_total') >= 2);
    // The dispatcher dies and comes back: the gateway sees a new instance and refreshes.
    await stack.proc('dispatcher').kill('SIGKILL');
    await stack.setVersion(topic, 4);
    await stack.startProc('dispatcher');
    await sub.waitEvent((e) => bodyJson(e.kwargs).version === 4, 30000);
    await stack.waitHealthy(20000);
    await stack.setVersion(topic, 5);
    stack.bumpCli(topic);
    await sub.waitEvent((e) => bodyJson(e.kwargs).version === 5, 15000);
    assert.ok(s.isOpen);
    await s.close();
  }));

  test('a gateway restart: fetchers rejoin at once and a returning session gets the fresh page', T, () => withStack({}, async (stack) => {
    const topic = '/pages/gateway-restart';
    await stack.setVersion(topic, 1);
    await stack.proc('gateway').kill('SIGKILL');
    await stack.startProc('gateway');
    // Fetchers reconnect within ZeroMQ's capped reconnect interval (one heartbeat) and
    // READY again when they see the new gateway instance: a snapshot needs no more than
    // a few heartbeats, not the Redis backoff cap.
    const t0 = Date.now();
    const s = await stack.connect({ token: 'tok-alice', serializer: 'msgpack' });
    const sub = await s.subscribe(topic, { get_retained: true });
    const ev = await sub.waitEvent((e) => e.details.retained === true, 4000);
    assert.equal(bodyJson(ev.kwargs).version, 1);
    assert.ok(Date.now() - t0 < 4000);
    await poll(async () => (await stack.metrics('gateway')).values.get('waymark_gateway_fetchers')
      === stack.fetcherNames.length, 4000 - (Date.now() - t0), 'every fetcher to rejoin');
    await stack.setVersion(topic, 2);
    await stack.publish(topic);
    await sub.waitEvent((e) => bodyJson(e.kwargs).version === 2, 10000);
    await s.close();
  }));

  test('a backend that refuses connections gives status 502', T, async () => {
    const dead = await freePort(); // nothing listens there
    await withStack({ backendUrl: `http://127.0.0.1:${dead}` }, async (stack) => {
      for (const ser of ['json', 'msgpack']) {
        const s = await stack.connect({ token: 'tok-alice', serializer: ser });
        const sub = await s.subscribe(`/users/1?${ser}`, { get_retained: true });
        const ev = await sub.waitEvent(() => true, 15000);
        assert.equal(ev.kwargs.status, 502);
        assert.equal(ev.details.retained, true);
        await stack.publish('/users/1');
        const ev2 = await sub.waitEvent((e) => !e.details.retained, 15000);
        assert.equal(ev2.kwargs.status, 502);
        await s.close();
      }
    });
  });

  test('a backend that stops answering in time gives status 504', T, () => withStack(
    { extraEnv: { WAYMARK_FETCH_TIMEOUT_MS: '1000' } },
    async (stack) => {
      const s = await stack.connect({ token: 'tok-alice', serializer: 'json' });
      const sub = await s.subscribe('/slow/timeout?ms=20000', { get_retained: true });
      const ev = await sub.waitEvent(() => true, 40000);
      assert.equal(ev.kwargs.status, 504, `event: ${JSON.stringify(ev.kwargs)}`);
      await s.close();
    },
  ));
});
