// The PHP demo backend over plain HTTP and through Waymark with the JS client (Node):
// who sees what, the view counter that Waymark's fetches leave alone, saves that bump.
// Run: node --test tests/browser/   (needs make, php-cli, php-redis, npm ci in tests/ and clients/js/)
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { metricSum, poll, waitFor } from '../integration/harness.mjs';
import { connect } from '../../clients/js/src/index.js';
import { demoRequest, startDemoStack } from './demo-stack.mjs';

const abLog = createRequire(new URL('../../clients/js/package.json', import.meta.url))('autobahn/lib/log.js');
abLog.warn = process.env.WAYMARK_TEST_VERBOSE ? console.warn.bind(console) : () => {};

const T = { timeout: 30000 };

describe('PHP demo backend', { timeout: 180000 }, () => {
  let env;
  let base;
  const clients = [];
  const req = (method, p, opts) => demoRequest(base, method, p, opts);

  // A JS client as `token` watching `topics`; .pages[topic] lists what arrived.
  function watcher(token, topics) {
    const w = new EventEmitter();
    w.pages = Object.fromEntries(topics.map((t) => [t, []]));
    w.client = connect({ url: env.stack.wsUrl, token });
    clients.push(w.client);
    for (const t of topics) {
      w.client.watch(t, (p) => { w.pages[t].push(p); w.emit('change'); });
    }
    w.wait = (t, pred, label) => waitFor(() => w.pages[t].find(pred), 10000, [w], `${token} ${t}: ${label}`);
    return w;
  }

  before(async () => {
    env = await startDemoStack();
    base = env.demo.url;
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    if (env) {
      const { logs } = await env.stop();
      // Tokens are secrets: no line of any Waymark daemon may carry one.
      for (const [file, text] of Object.entries(logs)) {
        assert.ok(!/tok-(alice|bob|nobody)/.test(text), `a token in ${file}`);
      }
    }
  });

  test('profiles: owner sees private fields, others the public ones, 403 and 401', T, async () => {
    const alice = await req('GET', '/users/1', { token: 'tok-alice' });
    assert.equal(alice.status, 200);
    assert.equal(alice.json.email, 'alice@example.org');
    assert.equal(alice.json.viewer, 'alice');
    const bob = await req('GET', '/users/1', { token: 'tok-bob' });
    assert.equal(bob.status, 200);
    assert.equal(bob.json.name, alice.json.name);
    assert.equal('email' in bob.json, false);
    assert.ok(!bob.text.includes('alice@example.org'));
    assert.equal((await req('GET', '/users/1', { token: 'tok-nobody' })).status, 403);
    const anon = await req('GET', '/users/1');
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate'), /^Bearer/);
    assert.equal((await req('GET', '/users/1', { token: 'tok-forged' })).status, 401);
    assert.equal((await req('GET', '/users/999', { token: 'tok-alice' })).status, 404);
  });

  test('a profile renders as HTML when asked, escaped', T, async () => {
    const r = await req('GET', '/users/2', { token: 'tok-bob', headers: { accept: 'text/html,*/*' } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.text, /<h1 class="name">Bob Builder<\/h1>/);
    assert.match(r.text, /bob@example\.org/);
    const other = await req('GET', '/users/2?format=html', { token: 'tok-alice' });
    assert.match(other.text, /<article class="profile"/);
    assert.ok(!other.text.includes('bob@example.org'));
  });

  test('GET /articles counts views, except when the request carries X-Waymark', T, async () => {
    const peek = async () => (await req('GET', '/articles/2', { token: 'tok-bob', headers: { 'x-waymark': '1' } })).json.views;
    const v0 = await peek();
    assert.equal(await peek(), v0);
    const plain = await req('GET', '/articles/2', { token: 'tok-bob' });
    assert.equal(plain.json.views, v0 + 1);
    assert.equal(await peek(), v0 + 1);
    assert.equal((await req('GET', '/articles/2', { token: 'tok-nobody' })).status, 403);
    assert.equal((await req('GET', '/articles/2')).status, 401);
  });

  test('saves are checked: only the owner edits a profile, bad input is 422', T, async () => {
    assert.equal((await req('POST', '/users/1', { token: 'tok-bob', body: { bio: 'hacked' } })).status, 403);
    assert.equal((await req('POST', '/users/1', { token: 'tok-nobody', body: { bio: 'x' } })).status, 403);
    assert.equal((await req('POST', '/users/1', { body: { bio: 'x' } })).status, 401);
    assert.equal((await req('POST', '/users/1', { token: 'tok-alice', body: { email: 'not an email' } })).status, 422);
    assert.equal((await req('POST', '/articles/1', { token: 'tok-alice', body: { title: '' } })).status, 422);
    assert.ok(!(await req('GET', '/users/1', { token: 'tok-bob' })).text.includes('hacked'));
  });

  test('saving a profile bumps it: each watcher gets the page its own user may see', T, async () => {
    const topics = ['/users/1'];
    const alice = watcher('tok-alice', topics);
    const bob = watcher('tok-bob', topics);
    const nobody = watcher('tok-nobody', topics);
    await alice.wait('/users/1', (p) => p.retained, 'snapshot');
    await bob.wait('/users/1', (p) => p.retained, 'snapshot');
    await nobody.wait('/users/1', (p) => p.retained, 'snapshot');
    const skipped = async () => metricSum((await env.stack.metrics('gateway')).values,
      /^waymark_gateway_events_skipped_unchanged_total$/);
    const skipped0 = await skipped();
    const bio = `bio ${Date.now()}`;
    const email = `alice.${Date.now()}@example.org`;
    const saved = await req('POST', '/users/1', { token: 'tok-alice', body: { bio, email } });
    assert.equal(saved.status, 200);
    assert.equal(saved.json.bumped, 1, 'one dispatcher heard the bump');
    const a = await alice.wait('/users/1', (p) => !p.retained && p.json().bio === bio, 'new bio');
    assert.equal(a.json().email, email);
    const b = await bob.wait('/users/1', (p) => !p.retained && p.json().bio === bio, 'new bio');
    assert.equal('email' in b.json(), false);
    assert.ok(!b.text().includes(email));
    // nobody's page is the same 403 as before: refetched with nobody's token, not pushed.
    await poll(async () => (await skipped()) > skipped0, 10000, "nobody's unchanged 403 not pushed");
    assert.equal(nobody.pages['/users/1'].filter((p) => !p.retained).length, 0);
    assert.ok(nobody.pages['/users/1'].every((p) => p.status === 403 && !p.text().includes(bio)));
  });

  test('saving an article bumps it and Waymark\'s fetches count no view', T, async () => {
    const peek = async () => (await req('GET', '/articles/1', { token: 'tok-alice', headers: { 'x-waymark': '1' } })).json.views;
    const v0 = await peek();
    const alice = watcher('tok-alice', ['/articles/1']);
    const bob = watcher('tok-bob', ['/articles/1']);
    await alice.wait('/articles/1', (p) => p.retained, 'snapshot');
    await bob.wait('/articles/1', (p) => p.retained, 'snapshot');
    const title = `Title ${Date.now()}`;
    assert.equal((await req('POST', '/articles/1', { token: 'tok-bob', body: { title } })).status, 200);
    for (const w of [alice, bob]) {
      const p = await w.wait('/articles/1', (x) => !x.retained && x.json().title === title, 'new title');
      assert.equal(p.json().views, v0, 'the page shows the views without Waymark\'s fetches');
    }
    assert.equal(await peek(), v0, 'four Waymark fetches, no view counted');
  });

  test('the page, the client module and autobahn.min.js are served', T, async () => {
    const page = await req('GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<script src="\/assets\/autobahn\.min\.js"><\/script>/);
    for (const p of ['/assets/autobahn.min.js', '/assets/waymark/browser.js', '/assets/waymark/core.js', '/app.js', '/style.css']) {
      const r = await req('GET', p);
      assert.equal(r.status, 200, p);
      assert.ok(r.text.length > 100, p);
    }
    const cfg = await req('GET', '/config.json');
    assert.equal(cfg.json.wsUrl, env.stack.wsUrl);
    assert.deepEqual(cfg.json.logins, ['alice', 'bob', 'nobody']);
  });
});
