// The demo page: log in as a demo user (a token per user, kept in this tab only), watch a
// profile and an article through the Waymark JS client, and re-render them on every page
// Waymark pushes. Saving only POSTs: the new content arrives through Waymark like
// everybody else's, fetched with this tab's own token.
import { connect } from '/assets/waymark/browser.js';

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const userId = /^[1-9][0-9]{0,8}$/.test(params.get('user') || '') ? params.get('user') : '1';
const articleId = /^[1-9][0-9]{0,8}$/.test(params.get('article') || '') ? params.get('article') : '1';
const KEY = 'waymark-demo';

let auth = JSON.parse(sessionStorage.getItem(KEY) || 'null');   // {token, user}
let client = null;
let latest = { profile: null, article: null };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

// form.name and form.title are the form's own properties: look inputs up by name.
const field = (form, name) => form.elements.namedItem(name);

function time(d) {
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

async function login(name) {
  const r = await fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: name }),
  });
  if (!r.ok) throw new Error(`login as ${name}: ${r.status}`);
  auth = await r.json();
  sessionStorage.setItem(KEY, JSON.stringify(auth));
}

function logout() {
  sessionStorage.removeItem(KEY);
  location.search = `?user=${userId}&article=${articleId}`;
}

async function api(method, path, body) {
  const r = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${auth.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try { json = await r.json(); } catch { /* not JSON */ }
  return { status: r.status, json };
}

// ---- rendering one pushed page ----

function render(kind, page) {
  const view = $(`#${kind}`);
  const n = Number(view.dataset.updates) + 1;
  let data = null;
  try { data = page.json(); } catch { /* not JSON: shown raw */ }
  view.replaceChildren();
  view.className = 'view';
  view.dataset.status = String(page.status);
  view.dataset.updates = String(n);
  view.dataset.version = data && data.version !== undefined ? String(data.version) : '';
  if (page.status === 200 && data) {
    latest[kind] = data;
    view.append(...(kind === 'profile' ? profileNodes(data) : articleNodes(data)));
  } else if (page.status === 401) {
    view.classList.add('denied');
    view.append(el('p', { class: 'state' }, '401: not logged in'));
  } else if (page.status === 403) {
    view.classList.add('denied');
    view.append(el('p', { class: 'state' }, `403 Forbidden: ${(data && data.reason) || 'not allowed'}`));
  } else {
    view.classList.add('error');
    view.append(el('p', { class: 'state' }, `status ${page.status}${page.error ? `: ${page.error}` : ''}`));
  }
  const how = page.retained ? 'current page on subscribe' : 'pushed after a bump';
  $(`#${kind}-meta`).textContent = `update #${n} at ${time(page.receivedAt)} (${how}), status ${page.status}` +
    (data && data.viewer ? `, rendered for ${data.viewer}` : '');
  $(`#${kind}-raw`).textContent = page.text();
  // A short highlight of what changed (a timer, not requestAnimationFrame, which
  // background tabs do not run).
  view.classList.add('flash');
  setTimeout(() => view.classList.remove('flash'), 80);
  $('#log').prepend(el('li', {}, `${time(page.receivedAt)} ${page.topic} ${page.status}` +
    (data && data.version !== undefined ? ` v${data.version}` : '') + (page.retained ? ' (snapshot)' : '')));
  if (kind === 'profile') fillProfileForm();
  if (kind === 'article') fillArticleForm();
}

function profileNodes(p) {
  const out = [el('h3', { class: 'name' }, p.name), el('p', { class: 'bio' }, p.bio)];
  if (p.email !== undefined) {
    out.push(el('p', { class: 'email' }, p.email, ' ', el('span', { class: 'private' }, '(private: only the owner sees this)')));
  }
  out.push(el('p', { class: 'small' }, `version ${p.version}, seen by `, el('b', { class: 'viewer' }, p.viewer)));
  return out;
}

function articleNodes(a) {
  return [
    el('h3', { class: 'title' }, a.title),
    el('p', { class: 'body' }, a.body),
    el('p', { class: 'small' }, `by ${a.author_name}, version ${a.version}, `,
      el('b', { class: 'views' }, String(a.views)), ' views, seen by ', el('b', { class: 'viewer' }, a.viewer)),
  ];
}

// The forms start from the latest page, unless the user is typing in them.
function fillProfileForm() {
  const f = $('#profile-form');
  const p = latest.profile;
  if (!p || f.contains(document.activeElement)) return;
  field(f, 'name').value = p.name;
  field(f, 'bio').value = p.bio;
  field(f, 'email').value = p.email || '';
}

function fillArticleForm() {
  const f = $('#article-form');
  const a = latest.article;
  if (!a || f.contains(document.activeElement)) return;
  field(f, 'title').value = a.title;
  field(f, 'body').value = a.body;
}

function saved(what, r) {
  const s = r.json && r.json.bumped;
  $('#save-result').textContent = r.status === 200
    ? `${what} saved at ${time(new Date())}; bump ${s === null ? `failed: ${r.json.bump_error}` : `heard by ${s} dispatcher(s)`}`
    : `${what} not saved: ${r.status} ${(r.json && (r.json.reason || r.json.error)) || ''}`;
  $('#save-result').dataset.status = String(r.status);
}

// ---- page setup ----

function showLogins(logins) {
  const box = $('#logins');
  box.replaceChildren();
  for (const name of logins) {
    const b = el('button', { type: 'button', 'data-login': name }, `log in as ${name}`);
    b.onclick = async () => { await login(name); location.reload(); };
    box.append(b);
  }
  if (auth) {
    const out = el('button', { type: 'button', id: 'logout' }, 'log out');
    out.onclick = logout;
    box.append(out);
  }
}

async function main() {
  const cfg = await (await fetch('/config.json')).json();
  if (params.get('as')) {
    await login(params.get('as'));
    params.delete('as');
    history.replaceState(null, '', `?${params}`);
  }
  showLogins(cfg.logins);
  if (!auth) return;
  $('#who').textContent = `Logged in as ${auth.user.name} (${auth.user.login})`;
  document.title = `Waymark demo: ${auth.user.login}`;
  $('#main').hidden = false;
  $('#profile-topic').textContent = `/users/${userId}`;
  $('#article-topic').textContent = `/articles/${articleId}`;
  $('#profile-links').append('Watch another profile: ',
    ...cfg.logins.map((_, i) => el('a', { href: `?user=${i + 1}&article=${articleId}` }, `/users/${i + 1} `)));

  $('#profile-form').hidden = String(auth.user.id) !== userId;
  $('#article-form').hidden = !auth.user.access;
  $('#profile-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    saved('profile', await api('POST', `/users/${userId}`, { name: field(f, 'name').value, bio: field(f, 'bio').value, email: field(f, 'email').value }));
  };
  $('#article-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    saved('article', await api('POST', `/articles/${articleId}`, { title: field(f, 'title').value, body: field(f, 'body').value }));
  };
  $('#read-article').onclick = async () => {
    const r = await api('GET', `/articles/${articleId}`);
    $('#save-result').textContent = r.status === 200
      ? `read the article: ${r.json.views} views now (watchers see the count at the next update)`
      : `read the article: ${r.status}`;
  };

  client = connect({
    url: cfg.wsUrl,
    realm: cfg.realm,
    token: auth.token,
    onStatus: (status, info) => {
      const s = $('#status');
      s.dataset.state = status;
      s.textContent = status === 'disconnected' ? `disconnected, retrying in ${info.retryInMs} ms` : status;
    },
    onError: (err) => {
      $('#log').prepend(el('li', { class: 'error' }, `${time(new Date())} error: ${err.message}`));
    },
  });
  client.watch(`/users/${userId}`, (page) => render('profile', page));
  client.watch(`/articles/${articleId}`, (page) => render('article', page));
  window.waymarkDemo = { client };   // for the browser test and for poking around
}

main().catch((e) => {
  $('#status').dataset.state = 'error';
  $('#status').textContent = `error: ${e.message}`;
});
