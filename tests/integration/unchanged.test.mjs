// Unchanged pages end to end: a group is not pushed a refetched page identical to the
// last one it got (status, content-type, body; the backend's /plain/ pages change their
// Date on every response), an ETag page is refetched with If-None-Match and a 304 pushes
// nothing, get_retained always gets its snapshot (from the kept page after a 304), and
// WAYMARK_PUSH_UNCHANGED=1 pushes every refetch. "Nothing was pushed" is shown by a sync
// point: the metric for the skipped push moved, then the next bump, with a change, is
// the very next EVENT.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyJson, metricSum, poll, startStack } from './harness.mjs';

const T = { timeout: 30000 };

async function counter(stack, name) {
  const m = await stack.metrics('gateway');
  return metricSum(m.values, new RegExp(`^waymark_gateway_${name}_total$`));
}

async function counterReaches(stack, name, value) {
  await poll(async () => (await counter(stack, name)) === value, 5000, `${name} = ${value}`);
}

const version = (ev) => bodyJson(ev.kwargs).version;

describe('unchanged pages are not pushed again', { timeout: 180000 }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
  }, { timeout: 60000 });

  after(async () => {
    if (stack) await stack.stop();
  }, { timeout: 30000 });

  test('an ETag page: If-None-Match, a 304 pushes nothing, a change is one EVENT', T, async () => {
    const topic = '/etag/a';
    await stack.setVersion(topic, 1);
    const s = await stack.connect({ token: 'tok-alice' });
    const sub = await s.subscribe(topic, { get_retained: true });
    const snap = await sub.waitEvent();
    assert.equal(snap.kwargs.status, 200);
    assert.equal(snap.kwargs.headers.etag, '"v1"');
    assert.equal(version(snap), 1);
    const nm = await counter(stack, 'fetches_not_modified');
    const skipped = await counter(stack, 'events_skipped_unchanged');

    // Unchanged: the backend sees the ETag and answers 304; nothing reaches the client.
    await stack.publish(topic);
    await stack.waitRequests(topic, 2);
    const reqs = await stack.requests(topic);
    assert.equal(reqs[0].headers['if-none-match'], undefined);
    assert.equal(reqs[1].headers['if-none-match'], '"v1"');
    await counterReaches(stack, 'fetches_not_modified', nm + 1);
    await counterReaches(stack, 'events_skipped_unchanged', skipped + 1);

    // Changed: the next EVENT is the new page (so the 304 pushed nothing before it).
    await stack.setVersion(topic, 2);
    await stack.publish(topic);
    const ev = await sub.waitEvent(() => true, undefined, 1);
    assert.equal(version(ev), 2);
    assert.equal(ev.kwargs.headers.etag, '"v2"');
    assert.ok(!ev.details.retained);

    // Unchanged again (304), then a change: v2 was pushed exactly once.
    await stack.publish(topic);
    await stack.waitRequests(topic, 4);
    assert.equal((await stack.requests(topic))[3].headers['if-none-match'], '"v2"');
    await counterReaches(stack, 'fetches_not_modified', nm + 2);
    await stack.setVersion(topic, 3);
    await stack.publish(topic);
    const ev3 = await sub.waitEvent(() => true, undefined, 2);
    assert.equal(version(ev3), 3);
    assert.deepEqual(sub.events.map(version), [1, 2, 3]);
    await s.close();
  });

  test('an identical body without validators (only the Date changed) is not pushed', T, async () => {
    const topic = '/plain/b';
    await stack.setVersion(topic, 1);
    const s = await stack.connect({ token: 'tok-alice' });
    const sub = await s.subscribe(topic, { get_retained: true });
    const snap = await sub.waitEvent();
    assert.ok(snap.kwargs.headers.date);
    const skipped = await counter(stack, 'events_skipped_unchanged');

    await stack.publish(topic);
    await stack.waitRequests(topic, 2);
    assert.equal((await stack.requests(topic))[1].headers['if-none-match'], undefined);
    await counterReaches(stack, 'events_skipped_unchanged', skipped + 1);

    await stack.setVersion(topic, 2);
    await stack.publish(topic);
    const ev = await sub.waitEvent(() => true, undefined, 1);
    assert.equal(version(ev), 2);
    assert.notEqual(ev.kwargs.headers.date, snap.kwargs.headers.date);
    assert.deepEqual(sub.events.map(version), [1, 2]);
    await s.close();
  });

  test('get_retained on an unchanged page still gets its snapshot', T, async () => {
    for (const topic of ['/etag/c', '/plain/c']) {
      await stack.setVersion(topic, 1);
      const a = await stack.connect({ token: 'tok-alice' });
      const b = await stack.connect({ token: 'tok-alice' });   // same group as a
      const sa = await a.subscribe(topic, { get_retained: true });
      await sa.waitEvent();
      const nm = await counter(stack, 'fetches_not_modified');

      // b joins the group with a snapshot: for the ETag page the fetch is conditional,
      // the backend answers 304 and b gets the kept page.
      const sb = await b.subscribe(topic, { get_retained: true });
      const snapB = await sb.waitEvent();
      assert.equal(snapB.details.retained, true);
      assert.equal(snapB.kwargs.status, 200);
      assert.equal(version(snapB), 1);
      // a asks again for the page it already has: it gets it again.
      const again = await a.subscribe(topic, { get_retained: true });
      assert.equal(again.id, sa.id);
      const snapA = await sa.waitEvent(() => true, undefined, 1);
      assert.equal(snapA.details.retained, true);
      assert.equal(version(snapA), 1);

      await stack.waitRequests(topic, 3);
      const reqs = await stack.requests(topic);
      if (topic.startsWith('/etag/')) {
        assert.deepEqual(reqs.map((r) => r.headers['if-none-match']), [undefined, '"v1"', '"v1"']);
        await counterReaches(stack, 'fetches_not_modified', nm + 2);
      } else {
        assert.equal(await counter(stack, 'fetches_not_modified'), nm);
      }
      // Neither session got anything else: a changed page is the next EVENT of both.
      await stack.setVersion(topic, 2);
      await stack.publish(topic);
      assert.equal(version(await sa.waitEvent(() => true, undefined, 2)), 2);
      assert.equal(version(await sb.waitEvent(() => true, undefined, 1)), 2);
      assert.equal(sa.events.length, 3);
      assert.equal(sb.events.length, 2);
      await a.close();
      await b.close();
    }
  });
});

describe('WAYMARK_PUSH_UNCHANGED=1', { timeout: 120000 }, () => {
  let stack;
  before(async () => {
    stack = await startStack({ extraEnv: { WAYMARK_PUSH_UNCHANGED: '1' } });
  }, { timeout: 60000 });

  after(async () => {
    if (stack) await stack.stop();
  }, { timeout: 30000 });

  test('every bump pushes an EVENT, no conditional GET', T, async () => {
    const s = await stack.connect({ token: 'tok-alice' });
    for (const topic of ['/etag/d', '/plain/d']) {
      await stack.setVersion(topic, 1);
      const sub = await s.subscribe(topic, { get_retained: true });
      await sub.waitEvent();
      for (let i = 1; i <= 3; i++) {
        await stack.publish(topic);
        const ev = await sub.waitEvent(() => true, undefined, i);
        assert.equal(ev.kwargs.status, 200);
        assert.equal(version(ev), 1);
      }
      assert.equal(sub.events.length, 4);
      const reqs = await stack.requests(topic);
      assert.equal(reqs.length, 4);
      for (const r of reqs) assert.equal(r.headers['if-none-match'], undefined);
    }
    assert.equal(await counter(stack, 'events_skipped_unchanged'), 0);
    assert.equal(await counter(stack, 'fetches_not_modified'), 0);
    await s.close();
  });
});
