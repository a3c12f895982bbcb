// The client interface end to end: sessions, auth, subscribe/unsubscribe, errors, calls,
// with Autobahn|JS over both serializers, against one shared stack (each test
// uses its own topics). Ends with the metrics check and the "no token in any log" check.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  bodyJson, connectAutobahn, findTokens, metricSum, shareStack, shutdownProblems,
} from './harness.mjs';

const SERIALIZERS = ['json', 'msgpack'];
// Autobahn|Python from Debian (python3-autobahn) for Debian's own python3.
const PYTHON = process.env.WAYMARK_TEST_PYTHON || '/usr/bin/python3';
const PY_CLIENT = fileURLToPath(new URL('./pyclient.py', import.meta.url));
const pyCheck = spawnSync(PYTHON, ['-c', 'import autobahn, msgpack'], { encoding: 'utf8' });
const PY_SKIP = pyCheck.status === 0 ? false : 'Debian package python3-autobahn is not installed';
const T = { timeout: 30000 };
let stack;

describe('WAMP interface', { timeout: 240000 }, () => {
  shareStack((s) => { stack = s; });

  for (const ser of SERIALIZERS) {
    test(`[${ser}] WELCOME carries session id, authid, authrole, authmethod and roles`, T, async () => {
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      assert.ok(s.session.id >= 1 && s.session.id <= 2 ** 53, `session id ${s.session.id}`);
      const d = s.welcome;
      assert.equal(d.authmethod, 'ticket');
      assert.equal(typeof d.authrole, 'string');
      assert.ok(d.authid !== undefined && d.authid !== null, 'authid present');
      assert.ok(d.roles && d.roles.broker && d.roles.dealer, `roles ${JSON.stringify(d.roles)}`);
      assert.equal(s.conn._transport.info.protocol, `wamp.2.${ser}`);
      const info = await s.close();
      assert.equal(info.details.reason, 'wamp.close.goodbye_and_out');
    });

    test(`[${ser}] two tokens each get the page rendered for their own token`, T, async () => {
      const topic = ser === 'json' ? '/users/11' : '/users/13'; // odd ids: alice owns them
      const alice = await stack.connect({ token: 'tok-alice', serializer: ser });
      const bob = await stack.connect({ token: 'tok-bob', serializer: ser });
      const sa = await alice.subscribe(topic);
      const sb = await bob.subscribe(topic);
      await stack.setVersion(topic, 5);
      stack.bumpCli(topic);
      const ea = await sa.waitEvent((e) => bodyJson(e.kwargs).version === 5);
      const eb = await sb.waitEvent((e) => bodyJson(e.kwargs).version === 5);
      assert.equal(ea.kwargs.status, 200);
      assert.equal(eb.kwargs.status, 200);
      const pa = bodyJson(ea.kwargs);
      const pb = bodyJson(eb.kwargs);
      assert.equal(pa.viewer, 'alice');
      assert.equal(pa.email, `user${topic.split('/')[2]}@example.test`);
      assert.equal(pb.viewer, 'bob');
      assert.equal(pb.email, undefined, 'bob must not see alice\'s email');
      assert.equal(ea.details.topic, topic);
      assert.equal(typeof ea.kwargs.body, 'string', 'a text body is a string');
      assert.match(ea.kwargs.headers['content-type'], /^application\/json/);
      for (const k of Object.keys(ea.kwargs.headers)) assert.equal(k, k.toLowerCase(), `header ${k} lowercase`);
      const reqs = await stack.requests(topic);
      const auths = new Set(reqs.map((r) => r.headers.authorization));
      assert.ok(auths.has('Bearer tok-alice') && auths.has('Bearer tok-bob'), `auth headers seen: ${[...auths]}`);
      for (const r of reqs) {
        assert.equal(r.headers['x-waymark'], '1');
        assert.equal(r.method, 'GET');
      }
      await alice.close();
      await bob.close();
    });

    test(`[${ser}] get_retained delivers a snapshot after SUBSCRIBED with retained: true`, T, async () => {
      const topic = ser === 'json' ? '/users/21' : '/users/23';
      await stack.setVersion(topic, 3);
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const sub = await s.subscribe(topic, { get_retained: true });
      const ev = await sub.waitEvent();
      assert.equal(ev.details.retained, true);
      assert.equal(ev.kwargs.status, 200);
      assert.equal(bodyJson(ev.kwargs).version, 3);
      // On the wire: SUBSCRIBED (33) first, then EVENT (36) with an empty args list and a
      // real boolean retained.
      const subscribedAt = s.wire.findIndex((m) => m[0] === 33 && m[2] === sub.id);
      const eventAt = s.wire.findIndex((m) => m[0] === 36 && m[1] === sub.id);
      assert.ok(subscribedAt >= 0 && subscribedAt < eventAt, `SUBSCRIBED at ${subscribedAt}, EVENT at ${eventAt}`);
      const wireEvent = s.wire[eventAt];
      assert.equal(wireEvent.length, 6);
      assert.deepEqual(wireEvent[4], []);
      assert.equal(wireEvent[3].retained, true);
      assert.ok(Number.isInteger(wireEvent[2]) && wireEvent[2] >= 1 && wireEvent[2] <= 2 ** 53);
      assert.ok(Number.isInteger(sub.id) && sub.id >= 1 && sub.id <= 2 ** 53);
      // A later bump's page is not retained.
      await stack.setVersion(topic, 4);
      await stack.publish(topic);
      const ev2 = await sub.waitEvent((e) => bodyJson(e.kwargs).version === 4);
      assert.equal(ev2.details.retained, false);
      await s.close();
    });

    test(`[${ser}] unsubscribe stops events`, T, async () => {
      const topic = `/pages/unsub-${ser}`;
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const watcher = await stack.connect({ token: 'tok-bob', serializer: ser });
      const sub = await s.subscribe(topic);
      const wsub = await watcher.subscribe(topic);
      await stack.setVersion(topic, 1);
      await stack.publish(topic);
      await sub.waitEvent((e) => bodyJson(e.kwargs).version === 1);
      await wsub.waitEvent((e) => bodyJson(e.kwargs).version === 1);
      await sub.unsubscribe();
      const unsubscribedAt = s.wire.findIndex((m) => m[0] === 35);
      assert.ok(unsubscribedAt >= 0, 'UNSUBSCRIBED received');
      const before = sub.events.length;
      await stack.setVersion(topic, 2);
      await stack.publish(topic);
      // The watcher's page for the same bump proves the bump was processed.
      await wsub.waitEvent((e) => bodyJson(e.kwargs).version === 2);
      assert.equal(sub.events.length, before, 'no event after unsubscribe');
      assert.ok(!s.wire.slice(unsubscribedAt).some((m) => m[0] === 36), 'no EVENT after UNSUBSCRIBED');
      assert.ok(s.isOpen);
      await s.close();
      await watcher.close();
    });

    test(`[${ser}] a 403 from the backend reaches the client as status 403`, T, async () => {
      const topic = ser === 'json' ? '/users/31' : '/users/33';
      const s = await stack.connect({ token: 'tok-nobody', serializer: ser });
      const sub = await s.subscribe(topic, { get_retained: true });
      const ev = await sub.waitEvent();
      assert.equal(ev.kwargs.status, 403);
      // The bump's refetch is the same 403 again: not pushed (unchanged.test.mjs), but
      // fetched with the same token.
      await stack.publish(topic);
      await stack.waitRequests(topic, 2);
      const reqs = await stack.requests(topic);
      assert.ok(reqs.every((r) => r.headers.authorization === 'Bearer tok-nobody'));
      await s.close();
    });

    test(`[${ser}] waymark.auth.refresh changes the token the backend sees`, T, async () => {
      const topic = ser === 'json' ? '/users/41' : '/users/43';
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const sub = await s.subscribe(topic, { get_retained: true });
      const first = await sub.waitEvent();
      assert.equal(bodyJson(first.kwargs).viewer, 'alice');
      await s.call('waymark.auth.refresh', ['tok-bob']);
      await stack.setVersion(topic, 9);
      await stack.publish(topic);
      const ev = await sub.waitEvent((e) => bodyJson(e.kwargs).version === 9);
      assert.equal(bodyJson(ev.kwargs).viewer, 'bob');
      assert.equal(bodyJson(ev.kwargs).email, undefined);
      const reqs = await stack.requests(topic);
      assert.equal(reqs.at(-1).headers.authorization, 'Bearer tok-bob');
      await s.close();
    });

    test(`[${ser}] topics that are not plain backend paths are refused with invalid_uri`, T, async () => {
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      const before = (await stack.requests()).length;
      const bad = [
        'http://evil.example/x',
        'https://evil.example/x',
        '//evil.example/x',
        '/users/../admin',
        '/users/%2e%2e/admin',
        '/..',
        'users/1',
        '/a b',
        '/x\u0001y',
        `/${'a'.repeat(5000)}`,
      ];
      for (const topic of bad) {
        await assert.rejects(s.subscribe(topic, { get_retained: true }),
          (e) => e.error === 'wamp.error.invalid_uri', `topic ${JSON.stringify(topic.slice(0, 40))}`);
      }
      assert.ok(s.isOpen, 'session survives refused subscriptions');
      // Prove the gateway is still serving this session, then check the backend saw nothing.
      const ok = await s.subscribe(`/pages/valid-${ser}`, { get_retained: true });
      await ok.waitEvent();
      const reqs = (await stack.requests()).slice(before);
      assert.deepEqual(reqs.map((r) => r.url), [`/pages/valid-${ser}`]);
      await s.close();
    });

    test(`[${ser}] PUBLISH with acknowledge is refused; without it is dropped silently`, T, async () => {
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      await assert.rejects(s.publish('/users/1', ['x'], {}, { acknowledge: true }),
        (e) => e.error === 'wamp.error.not_authorized');
      await s.publish('/users/1', ['x']); // no ack requested: nothing comes back
      // The session is still fine: a CALL round trip after the PUBLISH.
      await assert.rejects(s.call('waymark.no.such.thing'), (e) => e.error === 'wamp.error.no_such_procedure');
      assert.ok(s.isOpen);
      assert.ok(!s.wire.some((m) => m[0] === 8 && m[1] === 16 && m[4] !== 'wamp.error.not_authorized'));
      await s.close();
    });

    test(`[${ser}] an unknown procedure gives wamp.error.no_such_procedure`, T, async () => {
      const s = await stack.connect({ token: 'tok-alice', serializer: ser });
      await assert.rejects(s.call('com.example.nope', [1]), (e) => e.error === 'wamp.error.no_such_procedure');
      await s.close();
    });

    test(`[${ser}] the wrong realm gets ABORT wamp.error.no_such_realm`, T, async () => {
      await assert.rejects(connectAutobahn(stack.wsUrl, { realm: 'not-waymark', serializer: ser }),
        (e) => e.details && e.details.reason === 'wamp.error.no_such_realm');
    });

    test(`[${ser}] anonymous is refused when not allowed`, T, async () => {
      await assert.rejects(connectAutobahn(stack.wsUrl, { authmethods: ['anonymous'], serializer: ser }),
        (e) => e.details && typeof e.details.reason === 'string' && e.details.reason.startsWith('wamp.error.'));
    });
  }

  for (const ser of SERIALIZERS) {
    test(`[${ser}] Autobahn|Python joins, gets the retained page, then a bumped page`, { ...T, skip: PY_SKIP }, async () => {
      const topic = `/pages/python-${ser}`;
      await stack.setVersion(topic, 1);
      const child = spawn(PYTHON, [PY_CLIENT, stack.wsUrl, 'waymark', 'tok-dave', topic, ser],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => { stderr += d; });
      const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      const lines = [];
      try {
        for await (const line of readline.createInterface({ input: child.stdout })) {
          const msg = JSON.parse(line);
          lines.push(msg);
          if (msg.step === 'error') break;
          if (msg.step === 'event' && msg.retained) {
            await stack.setVersion(topic, 2);
            await stack.publish(topic);
          }
        }
      } finally {
        child.kill('SIGKILL');
      }
      const code = await exited;
      const events = lines.filter((l) => l.step === 'event');
      assert.equal(events.length, 2, `python client said ${JSON.stringify(lines)}; stderr ${stderr.slice(-500)}`);
      assert.equal(lines[0].authmethod, 'ticket');
      assert.equal(events[0].retained, true);
      assert.equal(events[0].status, 200);
      assert.equal(JSON.parse(events[0].body).viewer, 'dave');
      assert.equal(events[1].retained, false);
      assert.equal(JSON.parse(events[1].body).version, 2);
      assert.ok(code === 0 || code === null, `exit ${code}`);
    });
  }

  test('every process answers /metrics and the counters moved', T, async () => {
    const gw = await stack.metrics('gateway');
    assert.match(gw.contentType || '', /^text\/plain/);
    const g = (name) => gw.values.get(`waymark_gateway_${name}`);
    for (const name of ['events_delivered_total', 'sessions_opened_total', 'bumps_received_total',
      'jobs_sent_total', 'subscribe_refused_total', 'publishes_refused_total']) {
      assert.ok(g(name) > 0, `waymark_gateway_${name} = ${g(name)}`);
    }
    assert.equal(g('dispatcher_up'), 1);
    assert.equal(g('fetchers'), 2);
    const dp = await stack.metrics('dispatcher');
    assert.ok(dp.values.get('waymark_dispatcher_bumps_received_total') > 0);
    assert.ok(dp.values.get('waymark_dispatcher_bumps_published_total') > 0);
    assert.equal(dp.values.get('waymark_dispatcher_redis_up'), 1);
    let results = 0;
    for (const f of stack.fetcherNames) {
      const m = await stack.metrics(f);
      assert.ok(m.values.has('waymark_fetcher_jobs_received_total'), `${f} serves its metrics`);
      results += metricSum(m.values, /^waymark_fetcher_results_total$/); // labelled by status class
    }
    assert.ok(results > 0, 'fetchers returned results');
    for (const [name, text] of [['gateway', gw.text], ['dispatcher', dp.text]]) {
      assert.ok(!text.includes('tok-'), `${name} metrics carry no token`);
    }
  });

  test('every daemon stops cleanly on SIGTERM and no log file contains a token', T, async () => {
    const stopped = await stack.stop();
    const { logs } = stopped;
    stack = null;
    assert.deepEqual(shutdownProblems(stopped), []);
    assert.ok(Object.keys(logs).length >= 5, `log files: ${Object.keys(logs)}`);
    assert.ok(logs['gateway.log'].length > 0, 'the gateway logged at debug level');
    assert.deepEqual(findTokens(logs), []);
  });
});
