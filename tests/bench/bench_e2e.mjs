// bench_e2e: end-to-end figures on the real stack (redis-server, test backend, 1 dispatcher,
// 1 gateway, 2 fetchers, started by tests/integration/harness.mjs): bump-to-event latency,
// fan-out to 200 sessions, coalescing of a burst, and event throughput. Prints medians.
//
// Usage: WAYMARK_BUILD=build node tests/bench/bench_e2e.mjs [--quick]
//   --quick divides every count by 10 (a smoke run). Exit status 1 when a phase fails or
//   the whole run passes its deadline; every process started is stopped either way.
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { CHANNEL, Stack, poll, shutdownProblems, waitFor } from '../integration/harness.mjs';

const QUICK = process.argv.includes('--quick');
const scale = (n, min = 1) => (QUICK ? Math.max(min, Math.round(n / 10)) : n);

const C = {
  latencyBumps: scale(200, 20),
  fanSessions: 200,
  fanTokens: 20,
  fanRounds: scale(20, 3),
  burstBumps: 1000,
  burstRounds: scale(5, 2),
  tpSessions: scale(500, 50),
  tpBumps: scale(100000, 5000),
  tpRounds: scale(3, 1),
  connectBatch: 25,               // sessions joining at once
  phaseTimeoutMs: 120000,
  runDeadlineMs: 600000,
};

// ---- small statistics ----

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const median = (xs) => quantile(xs, 0.5);
const ms = (x) => `${x.toFixed(2)} ms`;
const num = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function print(label, text) {
  console.log(`${label}\n    ${text}`);
}

// ---- helpers on the stack ----

// PUBLISH over one pipelined RESP connection, as a backend's Redis client does. The
// harness's publisher() goes through redis-cli, which waits for each reply before it sends
// the next command (~10k bumps/s here): a "burst" through it would be spread over 100 ms.
async function respPublisher(port) {
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  sock.setNoDelay(true);
  sock.setEncoding('utf8');
  const replies = new EventEmitter();
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let buf = '';
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {   // a PUBLISH reply is one line: ":n" or "-ERR .."
      if (buf[0] === '-') errors++;
      buf = buf.slice(i + 2);
      answered++;
    }
    replies.emit('change');
  });
  const bulk = (x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`;
  return {
    publish(payload) {
      sock.write(`*3\r\n${bulk('PUBLISH')}${bulk(CHANNEL)}${bulk(payload)}`);
      sent++;
    },
    async flush(timeoutMs = 10000) {
      await waitFor(() => answered >= sent, timeoutMs, [replies], 'redis replies');
      if (errors) throw new Error(`redis refused ${errors} PUBLISH commands`);
    },
    async close() {
      sock.end();
      sock.destroy();
    },
  };
}

async function gw(stack) {
  return (await stack.metrics('gateway')).values;
}
const val = (m, k) => m.get(k) ?? 0;

// A latency quantile between metric snapshots, summed over processes: pairs is
// [[before, after], ...] of one histogram `name`. The upper bound of the bucket that holds
// quantile q, in ms (the histograms have fixed buckets: 1, 2.5, 5, 10, 25 ms, ...).
function histQuantile(pairs, name, q) {
  const delta = (k) => pairs.reduce((n, [m0, m1]) => n + val(m1, k) - val(m0, k), 0);
  const n = delta(`${name}_count`);
  if (n <= 0) return NaN;
  const les = [...pairs[0][1].keys()]
    .map((k) => (k.startsWith(`${name}_bucket{`) ? /le="([^"]+)"/.exec(k) : null))
    .filter(Boolean).map((x) => x[1]);
  les.sort((a, b) => Number(a) - Number(b));   // "+Inf" sorts last
  for (const le of les) {
    if (delta(`${name}_bucket{le="${le}"}`) >= q * n) return Number(le) * 1000;
  }
  return Infinity;
}
const GW_FETCH = 'waymark_gateway_fetch_latency_seconds';
const FT_FETCH = 'waymark_fetcher_fetch_duration_seconds';

// Gateway and fetcher metrics at once, for the fetch latency seen by each side.
async function snapshot(stack) {
  const names = ['gateway', ...stack.fetcherNames];
  const ms = await Promise.all(names.map(async (n) => (await stack.metrics(n)).values));
  return { gw: ms[0], ft: ms.slice(1) };
}

function fetchSplit(s0, s1) {
  const g = histQuantile([[s0.gw, s1.gw]], GW_FETCH, 0.5);
  const f = histQuantile(s0.ft.map((m, i) => [m, s1.ft[i]]), FT_FETCH, 0.5);
  return `gateway job sent -> result median <= ${g} ms, of which the fetcher's HTTP fetch <= ${f} ms`;
}

async function backendGets(stack, path) {
  return (await stack.requests(path)).length;
}

// Every GET the backend served so far, without fetching its request log: the count comes
// with any filtered listing, and no request has this path.
async function allGets(stack) {
  return (await stack.backend('GET', 'requests?path=%2F__bench_none')).body.count;
}

// Joins n sessions (batches, so the 2-core box is not flooded with handshakes) and
// subscribes each to topicOf(i) with tokenOf(i).
async function sessions(stack, n, tokenOf, topicOf) {
  const out = [];
  for (let i = 0; i < n; i += C.connectBatch) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + C.connectBatch); j++) {
      batch.push((async () => {
        const s = await stack.connect({ token: tokenOf(j), timeoutMs: 15000 });
        const sub = await s.subscribe(topicOf(j));
        // The time of the newest event, on this clock (the harness stamps Date.now()).
        sub.lastAt = 0;
        s.on('change', () => {
          if (sub.events.length !== sub.seen) {
            sub.seen = sub.events.length;
            sub.lastAt = performance.now();
          }
        });
        sub.seen = 0;
        return { s, sub };
      })());
    }
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

// CPU seconds (user + system) each process of the stack has used so far, and this one's
// (the WAMP clients). Linux /proc; USER_HZ is 100 on every Linux ABI node runs on.
function cpuTimes(stack) {
  const out = {};
  for (const [name, p] of stack.procs) {
    if (!p.child) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p.child.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (Number(f[11]) + Number(f[12])) / 100;   // utime, stime
    } catch {
      /* gone: left out */
    }
  }
  const u = process.cpuUsage();
  out.clients = (u.user + u.system) / 1e6;
  return out;
}

async function closeAll(list) {
  await Promise.allSettled(list.map(({ s }) => s.close()));
}

// Waits until the gateway has seen `bumps` more bumps than in m0 (or resynced), has no job
// queued or in flight (so nothing is pending: the last pages were fetched after the last
// bump) and has written exactly as many EVENTs as the clients received.
async function waitIdle(stack, m0, bumps, clientEvents) {
  const want = val(m0, 'waymark_gateway_bumps_received_total') + bumps;
  const resyncs0 = val(m0, 'waymark_gateway_resyncs_total');
  const del0 = val(m0, 'waymark_gateway_events_delivered_total');
  let m;
  await poll(async () => {
    m = await gw(stack);
    const arrived = val(m, 'waymark_gateway_bumps_received_total') >= want ||
      val(m, 'waymark_gateway_resyncs_total') > resyncs0;
    return arrived &&
      val(m, 'waymark_gateway_jobs_in_flight') === 0 &&
      val(m, 'waymark_gateway_jobs_queued') === 0 &&
      val(m, 'waymark_gateway_events_delivered_total') - del0 === clientEvents();
  }, C.phaseTimeoutMs, 'the gateway to go idle with every event received', 10);
  return m;
}

// ---- phases ----

async function latency(stack, pub) {
  const topic = '/seq/bench/latency';
  const [one] = await sessions(stack, 1, () => 'tok-lat', () => topic);
  const lat = [];
  let m0;
  let m1;
  try {
    for (let i = -10; i < C.latencyBumps; i++) {   // 10 warm-up bumps, not counted
      if (i === 0) m0 = await snapshot(stack);
      const from = one.sub.events.length;
      const t0 = performance.now();
      pub.publish(topic);
      await one.sub.waitEvent(() => true, 10000, from);
      if (i >= 0) lat.push(performance.now() - t0);
    }
    m1 = await snapshot(stack);
  } finally {
    await closeAll([one]);
  }
  print('(a) latency, bump -> event, 1 session',
    `median ${ms(median(lat))}, p95 ${ms(quantile(lat, 0.95))} over ${lat.length} sequential bumps ` +
    `(${fetchSplit(m0, m1)})`);
}

async function fanout(stack, pub) {
  const topic = '/seq/bench/fanout';
  const list = await sessions(stack, C.fanSessions, (i) => `tok-fan${i % C.fanTokens}`, () => topic);
  const last = [];
  const first = [];
  const gets = [];
  try {
    for (let r = -2; r < C.fanRounds; r++) {        // 2 warm-up rounds
      const g0 = await backendGets(stack, topic);
      const froms = list.map(({ sub }) => sub.events.length);
      const t0 = performance.now();
      pub.publish(topic);
      const at = await Promise.all(list.map(({ sub }, i) =>
        sub.waitEvent(() => true, 15000, froms[i]).then(() => performance.now())));
      if (r < 0) continue;
      last.push(Math.max(...at) - t0);
      first.push(Math.min(...at) - t0);
      gets.push((await backendGets(stack, topic)) - g0);
    }
  } finally {
    await closeAll(list);
  }
  print(`(b) fan-out, ${C.fanSessions} sessions / ${C.fanTokens} tokens, 1 topic`,
    `bump -> last session's event median ${ms(median(last))} (first event ${ms(median(first))}), ` +
    `backend GETs per bump median ${median(gets)} (expect ${C.fanTokens}: one per token), ` +
    `${C.fanRounds} rounds`);
}

async function coalescing(stack, pub) {
  const topic = '/seq/bench/burst';
  const [one] = await sessions(stack, 1, () => 'tok-burst', () => topic);
  const gets = [];
  const ratio = [];
  const drain = [];
  try {
    for (let r = 0; r < C.burstRounds; r++) {
      const m0 = await gw(stack);
      const g0 = await backendGets(stack, topic);
      const e0 = one.sub.events.length;
      const t0 = performance.now();
      for (let i = 0; i < C.burstBumps; i++) pub.publish(topic);
      await pub.flush(C.phaseTimeoutMs);
      await waitIdle(stack, m0, C.burstBumps, () => one.sub.events.length - e0);
      const n = (await backendGets(stack, topic)) - g0;
      gets.push(n);
      ratio.push(C.burstBumps / n);
      drain.push(one.sub.lastAt - t0);
    }
  } finally {
    await closeAll([one]);
  }
  print(`(c) coalescing, burst of ${C.burstBumps} bumps, 1 topic`,
    `backend GETs median ${median(gets)}, bumps/GET median ${num(median(ratio))}, ` +
    `first bump -> last event median ${ms(median(drain))}, ${C.burstRounds} rounds`);
}

async function throughput(stack, pub) {
  const topicOf = (i) => `/seq/bench/tp/${i}`;
  const list = await sessions(stack, C.tpSessions, () => 'tok-tp', topicOf);
  const evRate = [];
  const bumpRate = [];
  const ratio = [];
  const cpu = {};      // process -> [share of one core, per round]
  const split = [];
  let resyncs = 0;
  const total = () => list.reduce((n, { sub }) => n + sub.events.length, 0);
  try {
    for (let r = 0; r < C.tpRounds; r++) {
      const s0 = await snapshot(stack);
      const m0 = s0.gw;
      const g0 = await allGets(stack);
      const e0 = total();
      const c0 = cpuTimes(stack);
      const t0 = performance.now();
      for (let i = 0; i < C.tpBumps; i++) pub.publish(topicOf(i % C.tpSessions));
      await pub.flush(C.phaseTimeoutMs);
      const tPublished = performance.now();
      const m1 = await waitIdle(stack, m0, C.tpBumps, () => total() - e0);
      const tLast = Math.max(...list.map(({ sub }) => sub.lastAt));
      const c1 = cpuTimes(stack);
      const events = total() - e0;
      const n = (await allGets(stack)) - g0;
      evRate.push(events / ((tLast - t0) / 1000));
      bumpRate.push(C.tpBumps / ((tPublished - t0) / 1000));
      ratio.push(C.tpBumps / n);
      split.push(fetchSplit(s0, await snapshot(stack)));
      resyncs += val(m1, 'waymark_gateway_resyncs_total') - val(m0, 'waymark_gateway_resyncs_total');
      for (const k of Object.keys(c1)) {
        if (k in c0) (cpu[k] ||= []).push((c1[k] - c0[k]) / ((tLast - t0) / 1000));
      }
    }
  } finally {
    await closeAll(list);
  }
  print(`(d) throughput, ${C.tpSessions} sessions on ${C.tpSessions} topics, ${C.tpBumps} bumps per round, ${C.tpRounds} rounds`,
    `events delivered/s median ${num(median(evRate), 0)} (bumps went in at ` +
    `${num(median(bumpRate), 0)}/s; bumps/GET median ${num(median(ratio), 2)}` +
    `${resyncs ? `; ${resyncs} gateway resyncs` : ''})`);
  console.log(`    fetch latency, last round: ${split.at(-1)}`);
  console.log(`    CPU while it ran, median share of one core: ${Object.entries(cpu)
    .map(([k, xs]) => `${k} ${num(100 * median(xs), 0)}%`).join(', ')}`);
}

// ---- main ----

async function main() {
  const cpus = os.cpus();
  console.log(`bench_e2e: real stack (redis, backend, 1 dispatcher, 1 gateway, 2 fetchers) on loopback${QUICK ? ' [--quick]' : ''}`);
  console.log(`machine: ${cpus.length} cores (${cpus[0] ? cpus[0].model.trim() : '?'}), shared and noisy: ` +
    'compare figures from the same machine only; clients, backend and redis run on the same cores');
  const stack = new Stack({ fetchers: 2, extraEnv: { WAYMARK_LOG_LEVEL: 'info' } });
  let failed = false;
  // Past the deadline: stop the stack and fail. (A signal is the harness's business: it
  // kills every process it started and exits.)
  const deadline = setTimeout(async () => {
    console.error(`bench_e2e: run deadline of ${C.runDeadlineMs} ms passed: stopping`);
    await stack.stop().catch(() => {});
    process.exit(1);
  }, C.runDeadlineMs);
  let pub = null;
  try {
    await stack.start();
    pub = await respPublisher(stack.ports.redis);
    for (const phase of [latency, fanout, coalescing, throughput]) {
      try {
        await phase(stack, pub);
      } catch (e) {
        failed = true;
        console.error(`bench_e2e: ${phase.name} failed: ${e.message}`);
      }
    }
  } catch (e) {
    failed = true;
    console.error(`bench_e2e: ${e.message}`);
  } finally {
    if (pub) await pub.close().catch(() => {});
    const stopped = await stack.stop();
    const { logs } = stopped;
    // A daemon that crashed, hung on SIGTERM or logged a sanitizer report: figures from
    // a broken run are not figures.
    for (const p of shutdownProblems(stopped)) {
      failed = true;
      console.error(`bench_e2e: ${p}`);
    }
    if (failed) {
      for (const [f, text] of Object.entries(logs)) {
        console.error(`--- ${f} (last lines)\n${text.trimEnd().split('\n').slice(-8).join('\n')}`);
      }
    }
    clearTimeout(deadline);
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
