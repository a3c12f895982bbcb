// The docker-compose deployment, end to end from the host: real WAMP clients on the
// published gateway ports, bumps published on the published (password-protected) Redis,
// docker killing and scaling fetchers, Prometheus asked for its targets, then the
// two-gateway override behind haproxy. Run by tests/compose/compose-test.sh, which
// brings the stack up first; prints one TAP line per check.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectAutobahn, poll, bodyJson, parseMetrics, metricSum } from '../integration/harness.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = process.env;
const PROJECT = env.WM_CT_PROJECT;
const DOCKER = env.WM_CT_DOCKER || 'docker';
const PASSWORD = env.WM_CT_PASSWORD;
const CHANNEL = env.WAYMARK_REDIS_CHANNEL || 'waymark';
const BASE = ['-f', 'deploy/docker-compose.yml'];
const HA = [...BASE, '-f', 'deploy/docker-compose.ha.yml'];
const DEMO = [...HA, '-f', 'deploy/docker-compose.demo.yml'];
const port = (name) => Number(env[`WAYMARK_PUBLISH_${name}`]);
const WS = `ws://127.0.0.1:${port('WS')}/`;
const WS2 = `ws://127.0.0.1:${port('WS2')}/`;
const LB = `ws://127.0.0.1:${port('LB')}/`;
const BACKEND = `http://127.0.0.1:${port('BACKEND')}`;
const PROM = `http://127.0.0.1:${port('PROMETHEUS')}`;

// ---- a tiny TAP runner: a failed check is reported and the next one still runs ----
let n = 0;
const sessions = [];
async function check(name, fn) {
  n++;
  const t = Date.now();
  try {
    const note = await fn();
    console.log(`ok ${n} - ${name}${note ? ` (${note})` : ''} [${Date.now() - t} ms]`);
  } catch (e) {
    console.log(`not ok ${n} - ${name} [${Date.now() - t} ms]`);
    for (const l of String(e && e.stack ? e.message : e).split('\n').slice(0, 20)) console.log(`#   ${l}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// ---- docker, docker-compose ----
function run(cmd, args, timeoutMs = 180000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}\n${err.trim().split('\n').slice(-8).join('\n')}`));
    });
  });
}
const compose = (files, ...args) => run('docker-compose', ['-p', PROJECT, ...files, ...args]);
const docker = (...args) => run(DOCKER, args);

// Running containers of the project (of one service), with health, IP and name.
async function containers(service) {
  const filters = ['--filter', `label=com.docker.compose.project=${PROJECT}`];
  if (service) filters.push('--filter', `label=com.docker.compose.service=${service}`);
  const ids = (await docker('ps', '-q', ...filters)).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  return JSON.parse(await docker('inspect', ...ids)).map((c) => ({
    id: c.Id.slice(0, 12),
    name: c.Name.replace(/^\//, ''),
    service: c.Config.Labels['com.docker.compose.service'],
    health: c.State.Health ? c.State.Health.Status : 'none',
    healthLog: c.State.Health && c.State.Health.Log.length
      ? c.State.Health.Log[c.State.Health.Log.length - 1].Output.trim() : '',
    ips: Object.values(c.NetworkSettings.Networks).map((x) => x.IPAddress),
  }));
}

// Every running container healthy and exactly `want` containers per service.
async function waitHealthy(want, timeoutMs = 90000) {
  let last = [];
  try {
    await poll(async () => {
      last = await containers();
      const per = {};
      for (const c of last) per[c.service] = (per[c.service] || 0) + 1;
      return Object.entries(want).every(([s, k]) => per[s] === k)
        && Object.keys(per).every((s) => s in want)
        && last.every((c) => c.health === 'healthy');
    }, timeoutMs, 'every container healthy', 500);
  } catch (e) {
    throw new Error(`${e.message}\n${last.map((c) => `${c.name}: ${c.health} ${c.healthLog}`).join('\n')}`);
  }
  return last;
}

async function metricsOf(container) {
  const text = await docker('exec', container.id, 'curl', '-fsS', '-m', '2', 'http://127.0.0.1:9100/metrics');
  return parseMetrics(text);
}
const gatewayMetric = async (service, name) => metricSum(await metricsOf((await containers(service))[0]), new RegExp(`^${name}$`));

// ---- Redis (RESP over the published port, with the password) ----
function redisPublish(message) {
  return new Promise((resolve, reject) => {
    const cmd = (...a) => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
    const s = net.connect(port('REDIS'), '127.0.0.1');
    let buf = '';
    s.setTimeout(5000, () => { s.destroy(); reject(new Error('redis: timeout')); });
    s.on('error', reject);
    s.on('connect', () => s.write(cmd('AUTH', PASSWORD) + cmd('PUBLISH', CHANNEL, message)));
    s.on('data', (d) => {
      buf += d;
      const lines = buf.split('\r\n');
      if (lines.length < 3) return;
      s.destroy();
      if (lines[0] !== '+OK') reject(new Error(`redis AUTH: ${lines[0]}`));
      else if (!lines[1].startsWith(':')) reject(new Error(`redis PUBLISH: ${lines[1]}`));
      else resolve(Number(lines[1].slice(1)));
    });
  });
}
const publish = (m) => redisPublish(typeof m === 'string' ? m : JSON.stringify(m));

// ---- backend control API, Prometheus API ----
async function backend(p, body) {
  const r = await fetch(`${BACKEND}${p}`, body === undefined ? {} : {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert(r.ok, `backend ${p}: ${r.status}`);
  return r.json();
}
async function promApi(p) {
  const r = await fetch(`${PROM}${p}`, { signal: AbortSignal.timeout(5000) });
  const j = await r.json();
  assert(j.status === 'success', `prometheus ${p}: ${JSON.stringify(j).slice(0, 200)}`);
  return j.data;
}
const promValue = async (q) => {
  const d = await promApi(`/api/v1/query?query=${encodeURIComponent(q)}`);
  return d.result.length ? Number(d.result[0].value[1]) : NaN;
};

// Prometheus' active targets of a job: exactly one per container of `services`, at
// that container's address, and all up.
async function waitTargets(job, services, timeoutMs = 60000) {
  let why = '';
  await poll(async () => {
    const cs = (await Promise.all(services.map((s) => containers(s)))).flat();
    const want = new Set(cs.flatMap((c) => c.ips.map((ip) => `${ip}:9100`)));
    const ts = (await promApi('/api/v1/targets?state=active')).activeTargets
      .filter((t) => t.labels.job === job);
    const have = new Set(ts.map((t) => t.labels.instance));
    const down = ts.filter((t) => t.health !== 'up');
    why = `${job}: containers ${[...want].join(',')}; targets ${ts.map((t) => `${t.labels.instance}=${t.health}`).join(',')}`;
    return cs.length > 0 && ts.length === cs.length && down.length === 0 && [...want].every((w) => have.has(w));
  }, timeoutMs, `Prometheus targets of ${job}`, 500).catch((e) => { throw new Error(`${e.message}\n${why}`); });
  return why;
}

// The PHP demo's own API, as a browser would call it.
async function demo(method, p, token, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${BACKEND}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  assert(r.ok, `demo ${method} ${p}: ${r.status} ${text.slice(0, 200)}`);
  return text;
}

async function connect(url, token) {
  const s = await connectAutobahn(url, { token, timeoutMs: 10000 });
  sessions.push(s);
  return s;
}

// A bump reaches every (subscription, expected viewer) pair with version `version`.
async function bumpAndExpect(topic, version, subs, timeoutMs = 20000) {
  await backend('/__test/version', { path: topic.split('?')[0], version });
  const receivers = await publish(topic);
  assert(receivers >= 1, `PUBLISH ${topic}: ${receivers} receivers (dispatcher not subscribed?)`);
  await Promise.all(subs.map(({ sub, viewer }) => sub.waitEvent((e) => {
    const b = bodyJson(e.kwargs);
    return e.kwargs.status === 200 && b.version === version && b.viewer === viewer;
  }, timeoutMs)));
}

async function main() {
  let alice;
  let bob;
  let aliceSub;
  let bobSub;

  await check('every service healthy: redis, dispatcher, gateway, backend, prometheus, 3 fetchers', async () => {
    const cs = await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, fetcher: 3, backend: 1, prometheus: 1 });
    return cs.map((c) => c.name).join(' ');
  });

  await check('a WAMP client on the published gateway port gets the retained page fetched with its token', async () => {
    alice = await connect(WS, 'tok-alice');
    bob = await connect(WS, 'tok-bob');
    aliceSub = await alice.subscribe('/users/1', { get_retained: true });
    bobSub = await bob.subscribe('/users/1', { get_retained: true });
    const a = await aliceSub.waitEvent((e) => e.details.retained === true, 15000);
    const b = await bobSub.waitEvent((e) => e.details.retained === true, 15000);
    const ab = bodyJson(a.kwargs);
    const bb = bodyJson(b.kwargs);
    assert(a.kwargs.status === 200 && ab.viewer === 'alice' && ab.email, `alice got ${a.kwargs.status} ${JSON.stringify(ab)}`);
    assert(b.kwargs.status === 200 && bb.viewer === 'bob' && !bb.email, `bob got ${b.kwargs.status} ${JSON.stringify(bb)}`);
  });

  await check('a bump published on Redis reaches each client with a page fetched after it, with its own token', async () => {
    await bumpAndExpect('/users/1', 2, [{ sub: aliceSub, viewer: 'alice' }, { sub: bobSub, viewer: 'bob' }]);
    const reqs = (await backend('/__test/requests?path=/users/1')).requests;
    const auths = new Set(reqs.map((r) => r.headers.authorization));
    assert(auths.has('Bearer tok-alice') && auths.has('Bearer tok-bob'), `backend saw ${[...auths].join(', ')}`);
    assert(reqs.every((r) => r.headers['x-waymark'] === '1'), 'a fetch without X-Waymark: 1');
  });

  await check('docker kill of a fetcher with fetches in flight: every page of the burst still arrives', async () => {
    const topics = Array.from({ length: 30 }, (_, i) => `/slow/burst-${i}?ms=6000`);
    const subs = await Promise.all(topics.map((t) => alice.subscribe(t)));
    const before = await gatewayMetric('gateway', 'waymark_gateway_jobs_retried_total');
    await Promise.all(topics.map((t) => backend('/__test/version', { path: t.split('?')[0], version: 7 })));
    assert(await publish({ path: '/slow/burst-', match: 'prefix' }) >= 1, 'no Redis subscriber');
    // Every fetch has reached the backend (each takes 6 s): pick the busiest fetcher.
    await poll(async () => (await backend('/__test/requests')).requests
      .filter((r) => r.path.startsWith('/slow/burst-')).length >= topics.length,
    10000, 'the burst to reach the backend', 100);
    const fetchers = await containers('fetcher');
    const inFlight = await Promise.all(fetchers.map(async (c) =>
      metricSum(await metricsOf(c), /^waymark_fetcher_jobs_in_flight$/)));
    const i = inFlight.indexOf(Math.max(...inFlight));
    assert(inFlight[i] > 0, `no fetcher has a job in flight: ${inFlight}`);
    await docker('kill', fetchers[i].id);
    await Promise.all(subs.map((s) => s.waitEvent((e) => e.kwargs.status === 200 && bodyJson(e.kwargs).version === 7, 40000)));
    const after = await gatewayMetric('gateway', 'waymark_gateway_jobs_retried_total');
    assert(after > before, `jobs_retried did not move (${before} -> ${after})`);
    await Promise.all(subs.map((s) => s.unsubscribe()));
    return `killed ${fetchers[i].name} with ${inFlight[i]} of ${inFlight.reduce((a, b) => a + b, 0)} jobs in flight; ${after - before} retried`;
  });

  await check('up --scale fetcher=3 replaces the killed fetcher', async () => {
    await compose(BASE, 'up', '-d', '--no-recreate', '--scale', 'fetcher=3');
    await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, fetcher: 3, backend: 1, prometheus: 1 });
  });

  await check('scale to 5: five healthy fetchers, the gateway uses all five, each is its own up Prometheus target', async () => {
    await compose(BASE, 'up', '-d', '--no-recreate', '--scale', 'fetcher=5');
    await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, fetcher: 5, backend: 1, prometheus: 1 });
    await poll(async () => await gatewayMetric('gateway', 'waymark_gateway_fetchers') === 5, 20000, 'gateway to count 5 fetchers', 250);
    await waitTargets('waymark-fetcher', ['fetcher']);
    await bumpAndExpect('/users/1', 3, [{ sub: aliceSub, viewer: 'alice' }, { sub: bobSub, viewer: 'bob' }]);
  });

  await check('scale back to 3: the gateway and Prometheus drop the stopped fetchers, pages still arrive', async () => {
    await compose(BASE, 'up', '-d', '--no-recreate', '--scale', 'fetcher=3');
    await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, fetcher: 3, backend: 1, prometheus: 1 });
    await poll(async () => await gatewayMetric('gateway', 'waymark_gateway_fetchers') === 3, 20000, 'gateway to count 3 fetchers', 250);
    await waitTargets('waymark-fetcher', ['fetcher']);
    await bumpAndExpect('/users/1', 4, [{ sub: aliceSub, viewer: 'alice' }, { sub: bobSub, viewer: 'bob' }]);
  });

  await check('Prometheus scrapes every process as its own up target (dispatcher, gateway, each fetcher replica)', async () => {
    const out = [];
    for (const [job, svc] of [['waymark-dispatcher', 'dispatcher'], ['waymark-gateway', 'gateway'], ['waymark-fetcher', 'fetcher']]) {
      out.push(await waitTargets(job, [svc]));
    }
    return out.map((l) => l.split(';')[0]).join('; ');
  });

  await check('the Waymark metrics moved in Prometheus', async () => {
    const queries = {
      'sum(waymark_dispatcher_bumps_published_total)': 4,
      'sum(waymark_gateway_events_delivered_total)': 8,
      'sum(waymark_gateway_jobs_retried_total)': 1,
      'sum(waymark_fetcher_results_total)': 3,
      'min(waymark_dispatcher_redis_up)': 1,
      'sum(waymark_gateway_sessions)': 2,
    };
    let seen = {};
    await poll(async () => {
      seen = {};
      for (const q of Object.keys(queries)) seen[q] = await promValue(q);
      return Object.entries(queries).every(([q, min]) => seen[q] >= min);
    }, 30000, 'metrics in Prometheus', 1000).catch((e) => { throw new Error(`${e.message}\n${JSON.stringify(seen)}`); });
    return Object.entries(seen).map(([q, v]) => `${q}=${v}`).join(' ');
  });

  await check('no token in any Waymark container log', async () => {
    const logs = await compose(BASE, 'logs', '--no-color', 'redis', 'dispatcher', 'gateway', 'fetcher');
    const hits = logs.split('\n').filter((l) => l.includes('tok-'));
    assert(hits.length === 0, hits.slice(0, 5).join('\n'));
  });

  // ---- upgrades (deploy/README.md): replace one kind of process at a time ----
  await check('upgrade the fetchers (recreate all) during a burst: every page arrives', async () => {
    const topics = Array.from({ length: 20 }, (_, i) => `/slow/upgrade-${i}?ms=1500`);
    const subs = await Promise.all(topics.map((t) => alice.subscribe(t)));
    await Promise.all(topics.map((t) => backend('/__test/version', { path: t.split('?')[0], version: 8 })));
    assert(await publish({ path: '/slow/upgrade-', match: 'prefix' }) >= 1, 'no Redis subscriber');
    await compose(BASE, 'up', '-d', '--no-deps', '--force-recreate', '--scale', 'fetcher=3', 'fetcher');
    await Promise.all(subs.map((s) => s.waitEvent((e) => e.kwargs.status === 200 && bodyJson(e.kwargs).version === 8, 40000)));
    await Promise.all(subs.map((s) => s.unsubscribe()));
    await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, fetcher: 3, backend: 1, prometheus: 1 });
  });

  await check('upgrade the dispatcher: a bump published while it is down reaches the clients after it (RESYNC)', async () => {
    await compose(BASE, 'stop', 'dispatcher');
    await backend('/__test/version', { path: '/users/1', version: 9 });
    const receivers = await publish('/users/1');
    assert(receivers === 0, `${receivers} Redis subscribers with the dispatcher stopped`);
    await compose(BASE, 'up', '-d', '--no-deps', '--force-recreate', 'dispatcher');
    await Promise.all([{ sub: aliceSub, viewer: 'alice' }, { sub: bobSub, viewer: 'bob' }].map(({ sub, viewer }) =>
      sub.waitEvent((e) => bodyJson(e.kwargs).version === 9 && bodyJson(e.kwargs).viewer === viewer, 30000)));
    await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, fetcher: 3, backend: 1, prometheus: 1 });
  });

  // ---- two gateways behind haproxy, one dispatcher, one fetcher pool ----
  let carolSubs = [];
  await check('HA override: gateway2 and haproxy join, every fetcher connects to both gateways', async () => {
    await compose(HA, 'up', '-d', '--scale', 'fetcher=3');
    await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, gateway2: 1, haproxy: 1, fetcher: 3, backend: 1, prometheus: 1 }, 120000);
    for (const g of ['gateway', 'gateway2']) {
      await poll(async () => await gatewayMetric(g, 'waymark_gateway_fetchers') === 3, 20000, `${g} to count 3 fetchers`, 250);
    }
    for (const c of await containers('fetcher')) {
      const v = metricSum(await metricsOf(c), /^waymark_fetcher_gateways_connected$/);
      assert(v === 2, `${c.name}: gateways_connected ${v}`);
    }
  });

  await check('clients on gateway, on gateway2 and through haproxy (spread over both) all get their pages', async () => {
    const entries = [[WS, 'tok-carol'], [WS2, 'tok-dave'], [LB, 'tok-erin'], [LB, 'tok-frank'], [LB, 'tok-grace'], [LB, 'tok-heidi']];
    const ss = [];
    for (const [url, token] of entries) ss.push({ s: await connect(url, token), viewer: token.slice(4) });
    carolSubs = await Promise.all(ss.map(async ({ s, viewer }) => ({ sub: await s.subscribe('/users/5'), viewer })));
    const g1 = await gatewayMetric('gateway', 'waymark_gateway_sessions');
    const g2 = await gatewayMetric('gateway2', 'waymark_gateway_sessions');
    // gateway also holds alice and bob; haproxy (leastconn) sends the new ones to both.
    assert(g2 >= 2 && g1 >= 4, `sessions: gateway ${g1}, gateway2 ${g2}`);
    await bumpAndExpect('/users/5', 11, carolSubs);
    await bumpAndExpect('/users/1', 12, [{ sub: aliceSub, viewer: 'alice' }, { sub: bobSub, viewer: 'bob' }]);
    return `sessions: gateway ${g1}, gateway2 ${g2}`;
  });

  await check('upgrade gateway2: its clients reconnect through haproxy, re-subscribe with a snapshot, miss nothing', async () => {
    const s = await connect(LB, 'tok-ivan');
    let sub = await s.subscribe('/users/7', { get_retained: true });
    await sub.waitEvent((e) => e.details.retained === true, 15000);
    await compose(HA, 'up', '-d', '--no-deps', '--force-recreate', 'gateway2');
    // Changed while some clients are disconnected: the snapshot must carry it.
    await backend('/__test/version', { path: '/users/7', version: 21 });
    await publish('/users/7');
    await waitHealthy({ redis: 1, dispatcher: 1, gateway: 1, gateway2: 1, haproxy: 1, fetcher: 3, backend: 1, prometheus: 1 }, 60000);
    // A client whose gateway went away sees its session close; then it reconnects.
    const s2 = await connect(LB, 'tok-ivan');
    sub = await s2.subscribe('/users/7', { get_retained: true });
    const snap = await sub.waitEvent((e) => e.details.retained === true, 15000);
    assert(bodyJson(snap.kwargs).version === 21 && bodyJson(snap.kwargs).viewer === 'ivan', JSON.stringify(bodyJson(snap.kwargs)));
    await bumpAndExpect('/users/7', 22, [{ sub, viewer: 'ivan' }]);
    await s.close();
  });

  await check('Prometheus (HA config) scrapes both gateways, haproxy and each fetcher', async () => {
    const out = [await waitTargets('waymark-gateway', ['gateway', 'gateway2']), await waitTargets('waymark-fetcher', ['fetcher'])];
    await poll(async () => (await promApi('/api/v1/targets?state=active')).activeTargets
      .some((t) => t.labels.job === 'haproxy' && t.health === 'up'), 30000, 'haproxy target up', 500);
    return out.map((l) => l.split(';')[0]).join('; ');
  });

  // ---- the PHP demo app as the backend ----
  const ALL = { redis: 1, dispatcher: 1, gateway: 1, gateway2: 1, haproxy: 1, fetcher: 3, backend: 1, prometheus: 1 };
  await check('PHP demo as the backend (docker-compose.demo.yml): healthy, its page points at the gateway', async () => {
    await compose(DEMO, 'up', '-d', '--scale', 'fetcher=3');
    await waitHealthy(ALL, 90000);
    const cfg = JSON.parse(await demo('GET', '/config.json', 'tok-alice'));
    assert(cfg.wsUrl === WS, `config.json wsUrl ${cfg.wsUrl}, want ${WS}`);
    assert((await demo('GET', '/', 'tok-alice')).includes('<'), 'no page at /');
  });

  await check('PHP demo: alice saves her profile, the app bumps through Redis, alice (gateway) and bob (gateway2) get it, each with their own view', async () => {
    const a = await connect(WS, 'tok-alice');
    const b = await connect(WS2, 'tok-bob');
    const as = await a.subscribe('/users/1', { get_retained: true });
    const bs = await b.subscribe('/users/1', { get_retained: true });
    const snap = bodyJson((await as.waitEvent((e) => e.details.retained === true, 15000)).kwargs);
    await bs.waitEvent((e) => e.details.retained === true, 15000);
    const name = `Alice in Containers ${Date.now()}`;
    const saved = JSON.parse(await demo('POST', '/users/1', 'tok-alice', { name }));
    assert(saved.bumped >= 1, `the demo's bump: ${JSON.stringify(saved).slice(0, 200)}`);
    const ae = bodyJson((await as.waitEvent((e) => bodyJson(e.kwargs).name === name, 20000)).kwargs);
    const be = bodyJson((await bs.waitEvent((e) => bodyJson(e.kwargs).name === name, 20000)).kwargs);
    assert(ae.viewer === 'alice' && ae.email && ae.version > snap.version, `alice got ${JSON.stringify(ae)}`);
    assert(be.viewer === 'bob' && !('email' in be), `bob got ${JSON.stringify(be)}`);
  });

  await check('PHP demo: Waymark re-fetches of an article (X-Waymark) are not counted as views', async () => {
    const a = await connect(LB, 'tok-alice');
    const sub = await a.subscribe('/articles/1', { get_retained: true });
    const first = bodyJson((await sub.waitEvent((e) => e.details.retained === true, 15000)).kwargs);
    const title = `Refreshed ${Date.now()}`;
    await demo('POST', '/articles/1', 'tok-bob', { title });
    const next = bodyJson((await sub.waitEvent((e) => bodyJson(e.kwargs).title === title, 20000)).kwargs);
    assert(next.views === first.views, `views went from ${first.views} to ${next.views}`);
    const byHand = JSON.parse(await demo('GET', '/articles/1', 'tok-alice'));
    assert(byHand.views === first.views + 1, `a plain GET: views ${byHand.views}, want ${first.views + 1}`);
  });
}

try {
  await main();
  const stats = await docker('stats', '--no-stream', '--format', '{{.Name}} cpu={{.CPUPerc}} mem={{.MemUsage}}');
  for (const l of stats.trim().split('\n')) console.log(`# docker stats: ${l}`);
} finally {
  await Promise.allSettled(sessions.map((s) => s.close()));
}
console.log(`1..${n}`);
process.exit(0);
