// The demo in a real browser: headless Chromium (Debian chromium) driven by playwright-core
// opens the demo page as alice, bob and nobody (no access), alice saves her profile and bob
// the article, and alice's and bob's pages must re-render within a deadline with exactly
// what each may see, while nobody's page (the same 403) is not pushed again; Waymark's
// fetches must not move the article's view counter. Screenshots of
// every page go to tests/out/. Run: node --test tests/browser/
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { demoRequest, ROOT, startDemoStack } from './demo-stack.mjs';
import { metricSum, poll } from '../integration/harness.mjs';

const CHROMIUM = process.env.WAYMARK_CHROMIUM || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'tests', 'out');
const DEADLINE_MS = 10000;
const USERS = ['alice', 'bob', 'nobody'];

// Reads one page's panels: what a person would see, as data.
function readPanels(page) {
  return page.evaluate(() => {
    const panel = (id) => {
      const v = document.querySelector(`#${id}`);
      const txt = (sel) => { const e = v.querySelector(sel); return e ? e.textContent : null; };
      return {
        status: v.dataset.status,
        updates: Number(v.dataset.updates),
        version: v.dataset.version,
        name: txt('.name'),
        bio: txt('.bio'),
        email: txt('.email'),
        title: txt('.title'),
        views: txt('.views'),
        viewer: txt('.viewer'),
        state: txt('.state'),
        // Everything the panel shows, the raw page included.
        all: document.querySelector(`#${id}-panel`).textContent,
      };
    };
    return {
      connection: document.querySelector('#status').dataset.state,
      profile: panel('profile'),
      article: panel('article'),
    };
  });
}

describe('demo page in headless Chromium', { timeout: 180000 }, () => {
  let env;
  let ctx;
  let userDataDir;
  const pages = {};
  const pageErrors = [];

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing (Debian package chromium)`);
    env = await startDemoStack();
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waymark-chromium-'));
    // launchPersistentContext passes --user-data-dir itself (a fresh one); the rest keeps
    // Chromium off the network and quiet.
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1200, height: 900 },
      timeout: 30000,
    });
    fs.mkdirSync(OUT, { recursive: true });
  });

  after(async () => {
    if (ctx) await ctx.close().catch(() => {});
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    if (env) await env.stop();
  });

  const skipped = async () => metricSum((await env.stack.metrics('gateway')).values,
    /^waymark_gateway_events_skipped_unchanged_total$/);
  // nobody's pages stay the same 403 whatever is saved: after the gateway refetched and
  // skipped more than `since` pushes, its panel must not have re-rendered.
  async function nobodyUnchanged(since, before, panel, secret) {
    await poll(async () => (await skipped()) > since, DEADLINE_MS, "nobody's unchanged 403 not pushed");
    const n = await readPanels(pages.nobody);
    assert.equal(n[panel].updates, before.nobody[panel].updates, 'nobody got no push of an unchanged page');
    assert.equal(n[panel].status, '403');
    assert.ok(!n[panel].all.includes(secret), 'nobody sees no trace of the change');
  }

  const peekViews = async () => (await demoRequest(env.demo.url, 'GET', '/articles/1',
    { token: 'tok-alice', headers: { 'x-waymark': '1' } })).json.views;

  // Waits until pred(panels) holds on that page; the failure message shows what it had.
  async function until(user, pred, label) {
    const deadline = Date.now() + DEADLINE_MS;
    let last;
    for (;;) {
      last = await readPanels(pages[user]);
      if (pred(last)) return last;
      if (Date.now() > deadline) {
        assert.fail(`${user}: not within ${DEADLINE_MS} ms: ${label}; page shows ${JSON.stringify(last)}`);
      }
      // Re-check on the page's next DOM change (or after 250 ms), not on a fixed sleep.
      await pages[user].evaluate(() => new Promise((resolve) => {
        const mo = new MutationObserver(() => { mo.disconnect(); resolve(); });
        mo.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
        setTimeout(() => { mo.disconnect(); resolve(); }, 250);
      }));
    }
  }

  test('three users open the demo and each sees what it may see', { timeout: 60000 }, async () => {
    for (const user of USERS) {
      const page = await ctx.newPage();
      page.on('pageerror', (e) => pageErrors.push(`${user}: ${e.message}`));
      pages[user] = page;
      await page.goto(`${env.demo.url}/?as=${user}&user=1&article=1`);
    }
    const ready = (p) => p.connection === 'open' && p.profile.updates >= 1 && p.article.updates >= 1;
    const a = await until('alice', ready, 'first pages');
    const b = await until('bob', ready, 'first pages');
    const n = await until('nobody', ready, 'first pages');
    assert.equal(a.profile.status, '200');
    assert.equal(a.profile.email, 'alice@example.org (private: only the owner sees this)');
    assert.equal(a.profile.viewer, 'alice');
    assert.equal(b.profile.status, '200');
    assert.equal(b.profile.name, a.profile.name);
    assert.equal(b.profile.email, null);
    assert.ok(!b.profile.all.includes('alice@example.org'), 'bob sees no trace of the email');
    assert.equal(b.profile.viewer, 'bob');
    assert.equal(n.profile.status, '403');
    assert.match(n.profile.state, /^403 Forbidden/);
    assert.equal(n.article.status, '403');
    assert.equal(a.article.status, '200');
    assert.equal(b.article.status, '200');
  });

  test('alice saves her profile: every page re-renders with what its user may see', { timeout: 60000 }, async () => {
    const views0 = await peekViews();
    const before = {};
    for (const u of USERS) before[u] = await readPanels(pages[u]);
    const skipped0 = await skipped();
    const bio = `Saved from the browser at ${Date.now()}`;
    const email = `alice.${Date.now()}@example.org`;
    await pages.alice.fill('#profile-form [name="bio"]', bio);
    await pages.alice.fill('#profile-form [name="email"]', email);
    await pages.alice.click('#save-profile');

    const a = await until('alice', (p) => p.profile.bio === bio, 'new bio');
    assert.equal(a.profile.email, `${email} (private: only the owner sees this)`);
    assert.equal(a.profile.viewer, 'alice');
    assert.ok(Number(a.profile.version) > Number(before.alice.profile.version));

    const b = await until('bob', (p) => p.profile.bio === bio, 'new bio');
    assert.equal(b.profile.email, null);
    assert.ok(!b.profile.all.includes(email), 'the new email never reaches bob\'s page');
    assert.equal(b.profile.viewer, 'bob');
    assert.equal(b.profile.version, a.profile.version);

    await nobodyUnchanged(skipped0, before, 'profile', bio);
    assert.ok(!(await readPanels(pages.nobody)).profile.all.includes(email));

    assert.equal(await peekViews(), views0, 'a profile save moves no view counter');
  });

  test('bob saves the article: re-rendered everywhere, view counter untouched by Waymark', { timeout: 60000 }, async () => {
    const views0 = await peekViews();
    const before = {};
    for (const u of USERS) before[u] = await readPanels(pages[u]);
    const skipped0 = await skipped();
    const title = `Edited by bob at ${Date.now()}`;
    await pages.bob.fill('#article-form [name="title"]', title);
    await pages.bob.click('#save-article');

    for (const u of ['alice', 'bob']) {
      const p = await until(u, (x) => x.article.title === title, 'new title');
      assert.equal(p.article.views, String(views0), `${u}'s page shows the views without Waymark's fetches`);
      assert.equal(p.article.viewer, u);
    }
    await nobodyUnchanged(skipped0, before, 'article', title);
    assert.equal(await peekViews(), views0, 'Waymark\'s fetches counted no view');

    // The counter does count a person's read (the page's button: a GET without X-Waymark).
    await pages.bob.click('#read-article');
    await pages.bob.waitForFunction((v) => document.querySelector('#save-result').textContent.includes(`${v} views`),
      views0 + 1, { timeout: DEADLINE_MS });
    assert.equal(await peekViews(), views0 + 1);
  });

  test('screenshots of each page are saved under tests/out/', { timeout: 60000 }, async () => {
    for (const u of USERS) {
      const file = path.join(OUT, `demo-${u}.png`);
      await pages[u].screenshot({ path: file, fullPage: true });
      assert.ok(fs.statSync(file).size > 1000, `${file} written`);
    }
    assert.deepEqual(pageErrors, [], 'no uncaught error in any page');
  });
});
