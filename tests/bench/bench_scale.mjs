// bench_scale: what N idle subscribed sessions cost one gateway, on the real stack
// (tests/integration/harness.mjs: redis-server, test backend, 1 dispatcher, 1 gateway,
// 2 fetchers). The sessions come from the C load client (tests/tools/wsload.c, at most
// WAYMARK_SCALE_PER_PROCESS sessions per process) so that the client is not the
// bottleneck; its CPU share is printed beside each figure. For each N, on a fresh stack:
//   setup    N sessions connect (at most WAYMARK_SCALE_CONCURRENCY, default 1000, between
//            connect() and SUBSCRIBED at a time), join with their own ticket, subscribe to
//            their own topic: sessions/s to WELCOME + SUBSCRIBED
//   idle     gateway CPU over WAYMARK_SCALE_IDLE_S seconds nobody sends anything
//   RSS      gateway VmRSS before, with N sessions (per session), after closing all N
//   latency  bump -> EVENT of one more session (its own wsload process, which PUBLISHes on
//            Redis itself and times to the EVENT): p50, p99 over WAYMARK_SCALE_BUMPS bumps
//   delivery every topic bumped in a loop at WAYMARK_SCALE_DELIVERY_RATE bumps/s for
//            WAYMARK_SCALE_DELIVERY_S seconds: gateway CPU per 1k deliveries/s (0 s: skipped)
//   close    every session closed at once: time until the gateway's gauges read zero
// Prints figures; asserts nothing about speed. Exit status 1 when a phase fails (a session
// not set up, a bump lost, a gauge not back to zero, a daemon that did not stop cleanly).
//
// Usage: WAYMARK_BUILD=build node tests/bench/bench_scale.mjs
//   WAYMARK_SCALE_N="1000 5000 19000"   session counts, one run each
//   WAYMARK_SCALE_PERF=1                also `perf record -g` the idle gateway at the largest N
//                                       for WAYMARK_SCALE_IDLE_S seconds and print the top symbols
//   WAYMARK_SCALE_RETAINED=1            subscribe with get_retained (a reconnect storm) and
//                                       also time until every session has its snapshot
//   WAYMARK_SCALE_CONCURRENCY=N         all N connect at once (default: a window of 1000)
//   WAYMARK_SCALE_IDLE_S, _BUMPS, _DELIVERY_S, _DELIVERY_RATE, _PER_PROCESS: see C below
// The gateway gets WAYMARK_MAX_SESSIONS=25000 (WAYMARK_SCALE_MAX_SESSIONS; empty: not set,
// the gateway's own default) and its RLIMIT_NOFILE soft limit raised to the hard limit with
// prlimit(1) once it runs (a gateway that raises its own limit changes nothing).
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { BUILD, CHANNEL, Stack, poll, shutdownProblems, waitFor } from '../integration/harness.mjs';
import { WsLoad, cpuSeconds } from '../tools/wsload.mjs';

const env = process.env;
const NS = (env.WAYMARK_SCALE_N || '1000 5000 19000').split(/[\s,]+/).filter(Boolean).map(Number);
const C = {
  perProcess: Number(env.WAYMARK_SCALE_PER_PROCESS || 10000),
  concurrency: Number(env.WAYMARK_SCALE_CONCURRENCY || 1000),
  idleS: Number(env.WAYMARK_SCALE_IDLE_S || 10),
  bumps: Number(env.WAYMARK_SCALE_BUMPS || 200),
  deliveryS: Number(env.WAYMARK_SCALE_DELIVERY_S ?? 5),
  deliveryRate: Number(env.WAYMARK_SCALE_DELIVERY_RATE || 2000),
  perf: env.WAYMARK_SCALE_PERF === '1',
  retained: env.WAYMARK_SCALE_RETAINED === '1',
  maxSessions: env.WAYMARK_SCALE_MAX_SESSIONS ?? '25000',
  setupTimeoutMs: 300000,
  phaseTimeoutMs: 120000,
};
for (const n of NS) if (!(n > 0)) throw new Error(`bad WAYMARK_SCALE_N ${env.WAYMARK_SCALE_N}`);

// ---- small helpers ----

const pct = (x) => `${(100 * x).toFixed(1)}%`;
const num = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const mb = (kb) => `${(kb / 1024).toFixed(1)} MB`;

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function hardNofile() {
  const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m ? m[1] : null;
}

// CPU seconds of a set of processes (pids), summed.
const cpuOf = (pids) => pids.reduce((s, p) => s + cpuSeconds(p), 0);

// A window of wall time over which CPU shares of the gateway and the clients are taken.
function cpuWindow(gwPid, clientPids) {
  const t0 = performance.now();
  const g0 = cpuSeconds(gwPid);
  const c0 = cpuOf(clientPids);
  return () => {
    const s = (performance.now() - t0) / 1000;
    return { s, gw: (cpuSeconds(gwPid) - g0) / s, clients: (cpuOf(clientPids) - c0) / s };
  };
}

async function gauges(stack) {
  const v = (await stack.metrics('gateway')).values;
  const g = (k) => v.get(k) ?? 0;
  return {
    sessions: g('waymark_gateway_sessions'),
    subscriptions: g('waymark_gateway_subscriptions'),
    delivered: g('waymark_gateway_events_delivered_total'),
    queued: g('waymark_gateway_jobs_queued'),
    inFlight: g('waymark_gateway_jobs_in_flight'),
    bumps: g('waymark_gateway_bumps_received_total'),
  };
}

// PUBLISH over one pipelined RESP connection, as a backend's Redis client does.
async function respPublisher(port) {
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  sock.setNoDelay(true);
  sock.setEncoding('utf8');
  const ev = new EventEmitter();
  let sent = 0;
  let answered = 0;
  let buf = '';
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      buf = buf.slice(i + 2);
      answered++;
    }
    ev.emit('change');
  });
  const bulk = (x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`;
  return {
    publish(payload) {
      sock.write(`*3\r\n${bulk('PUBLISH')}${bulk(CHANNEL)}${bulk(payload)}`);
      sent++;
    },
    flush(timeoutMs = 30000) {
      return waitFor(() => answered >= sent, timeoutMs, [ev], 'redis replies');
    },
    close() {
      sock.destroy();
    },
  };
}

// Runs `perf record -g` on the gateway for seconds, prints the top of its report.
async function perfTop(pid, seconds, dir, label) {
  const data = path.join(dir, 'perf.data');
  const rec = spawn('perf', ['record', '-g', '-o', data, '-p', String(pid), '--', 'sleep', String(seconds)],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  rec.stderr.on('data', (d) => { err += d; });
  const [code] = await once(rec, 'close');
  if (code !== 0) {
    console.log(`    perf record failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`);
    return;
  }
  const rep = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--percent-limit', '0.5',
    '-g', 'none', '--sort', 'dso,symbol'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  console.log(`    perf record -g -p <gateway> over ${seconds} s, ${label}; perf report --no-children, top:`);
  const lines = rep.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  for (const l of lines.slice(0, 25)) console.log(`      ${l.replace(/(\s+-)+\s*$/, '').trim()}`);
}

// ---- one run ----

async function run(n, isLargest) {
  const r = { n, ok: true };
  const extraEnv = { WAYMARK_LOG_LEVEL: 'info' };
  if (C.maxSessions) extraEnv.WAYMARK_MAX_SESSIONS = C.maxSessions;
  const stack = new Stack({ fetchers: 2, extraEnv });
  const clients = [];
  let probe = null;
  let pub = null;
  const fail = (what) => {
    r.ok = false;
    console.error(`bench_scale: N=${n}: ${what}`);
  };
  try {
    await stack.start();
    const gwPid = stack.proc('gateway').child.pid;
    const hard = hardNofile();
    if (hard) {
      const pr = spawnSync('prlimit', ['--pid', String(gwPid), `--nofile=${hard}:${hard}`], { encoding: 'utf8' });
      if (pr.status !== 0) console.log(`    prlimit failed: ${pr.stderr.trim()}`);
    }
    r.rss0 = rssKb(gwPid);

    // setup: every client process starts connecting at once
    const procs = Math.ceil(n / C.perProcess);
    const wCpu = cpuWindow(gwPid, []);
    const t0 = performance.now();
    for (let p = 0; p < procs; p++) {
      const from = Math.floor((p * n) / procs);
      const to = Math.floor(((p + 1) * n) / procs);
      clients.push(new WsLoad(BUILD, stack.wsUrl, ['--count', String(to - from), '--from', String(from),
        '--token', 'tok-idle%d', '--topic', '/seq/idle/%d', '--concurrency', String(C.concurrency),
        '--setup-timeout-ms', String(C.setupTimeoutMs), ...(C.retained ? ['--retained'] : [])]));
    }
    const readies = await Promise.all(clients.map((c) => c.ready(C.setupTimeoutMs + 10000)));
    const setupS = (performance.now() - t0) / 1000;
    const w = wCpu();
    const failed = readies.reduce((s, x) => s + x.failed + x.pending, 0);
    if (failed) {
      fail(`${failed} sessions not set up; the clients said:\n${clients.map((c) => c.stderr.trim()).join('\n')}`);
    }
    const clientCpuS = readies.reduce((s, x) => s + x.cpu_ms / 1000, 0);
    const ok = readies.reduce((s, x) => s + x.subscribed, 0);
    r.setupRate = ok / setupS;
    r.setupClients = clientCpuS / setupS;
    console.log(`  setup: ${ok === n ? '' : `${ok} of `}${n} sessions (${procs} client process${procs > 1 ? 'es' : ''}, window ${C.concurrency}) ` +
      `in ${num(setupS, 2)} s = ${num(r.setupRate, 0)} sessions/s to WELCOME + SUBSCRIBED` +
      ` [clients ${pct(r.setupClients)} of a core, gateway ${pct(w.gw)}]`);
    if (C.retained) {
      // every snapshot in: the gateway fetched a page per session, with its token
      const subscribed = ok;
      await poll(async () => (await Promise.all(clients.map((c) => c.stats())))
        .reduce((s, x) => s + x.retained, 0) >= subscribed, C.setupTimeoutMs, `${subscribed} snapshots`, 20);
      const snapS = (performance.now() - t0) / 1000;
      const ws = wCpu();
      const cs = clients.reduce((s, c) => s + c.cpuSeconds(), 0);
      console.log(`  snapshots (get_retained): all ${subscribed} in after ${num(snapS, 2)} s = ` +
        `${num(subscribed / snapS, 0)} sessions/s to their snapshot [clients ${pct(cs / snapS)}, gateway ${pct(ws.gw)}]`);
    }
    const g1 = await gauges(stack);
    if (g1.sessions < n || g1.subscriptions < n) fail(`gauges after setup: ${JSON.stringify(g1)}`);
    const clientPids = clients.map((c) => c.pid);

    // idle
    const wIdle = cpuWindow(gwPid, clientPids);
    await delay(C.idleS * 1000);
    const idle = wIdle();
    r.idleCpu = idle.gw;
    r.idleClients = idle.clients;
    r.rssN = rssKb(gwPid);
    r.rssPer = ((r.rssN - r.rss0) * 1024) / ok;
    console.log(`  idle ${C.idleS} s: gateway CPU ${pct(idle.gw)} of a core [clients ${pct(idle.clients)}]`);
    console.log(`  RSS: ${mb(r.rss0)} before, ${mb(r.rssN)} with ${ok} sessions = ${num(r.rssPer / 1024, 2)} KB per session`);
    if (C.perf && isLargest) await perfTop(gwPid, C.idleS, stack.dir, `${n} idle sessions`);

    // latency of one more session
    probe = new WsLoad(BUILD, stack.wsUrl, ['--count', '1', '--token', 'tok-probe%d', '--topic', '/seq/probe/%d',
      '--redis', `127.0.0.1:${stack.ports.redis}`, '--channel', CHANNEL, '--bumps', String(C.bumps)]);
    const pr = await probe.ready(C.phaseTimeoutMs);
    if (pr.subscribed !== 1) fail(`the probe session did not set up: ${probe.stderr.trim()}`);
    const wLat = cpuWindow(gwPid, clientPids);
    const pl = await probe.line('probe', C.bumps * 10000 + C.phaseTimeoutMs);
    const lat = wLat();
    const probeCpu = cpuSeconds(probe.pid);
    await probe.end();
    Object.assign(r, { p50: pl.p50_ms, p99: pl.p99_ms, max: pl.max_ms, lost: pl.lost, latClients: lat.clients });
    if (pl.lost) fail(`${pl.lost} of ${C.bumps} probe bumps got no EVENT within 10 s ${probe.stderr.trim()}`);
    console.log(`  bump -> EVENT, 1 other session, ${pl.n} sequential bumps: p50 ${num(pl.p50_ms, 2)} ms, ` +
      `p99 ${num(pl.p99_ms, 2)} ms, max ${num(pl.max_ms, 1)} ms, ${pl.lost} lost` +
      ` [probe client ${pct(probeCpu / lat.s)}, load clients ${pct(lat.clients)}, gateway ${pct(lat.gw)}]`);

    // deliveries: every topic bumped round-robin at a fixed rate
    if (C.deliveryS > 0) {
      pub = await respPublisher(stack.ports.redis);
      const total = Math.round(C.deliveryS * C.deliveryRate);
      const m0 = await gauges(stack);
      const ev0 = (await Promise.all(clients.map((c) => c.stats()))).reduce((s, x) => s + x.events, 0);
      const wDel = cpuWindow(gwPid, clientPids);
      const tStart = performance.now();
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - tStart) / 1000) * C.deliveryRate) + 1);
        for (; sent < due; sent++) pub.publish(`/seq/idle/${sent % n}`);
        await delay(5);
      }
      await pub.flush();
      let m1;
      await poll(async () => {
        m1 = await gauges(stack);
        return m1.bumps >= m0.bumps + total && m1.queued === 0 && m1.inFlight === 0;
      }, C.phaseTimeoutMs, 'the gateway to receive every bump and finish its jobs', 20);
      const ev1 = (await Promise.all(clients.map((c) => c.stats()))).reduce((s, x) => s + x.events, 0);
      const d = wDel();
      const delivered = m1.delivered - m0.delivered;
      r.delRate = delivered / d.s;
      r.delGw = d.gw;
      r.cpuPer1k = d.gw / (r.delRate / 1000);
      r.delClients = d.clients;
      console.log(`  deliveries: ${total} bumps at ${C.deliveryRate}/s over ${n} topics: ${delivered} EVENTs ` +
        `(clients received ${ev1 - ev0}) in ${num(d.s, 2)} s = ${num(r.delRate, 0)}/s; gateway CPU ${pct(d.gw)}` +
        ` = ${pct(r.cpuPer1k)} of a core per 1k deliveries/s [clients ${pct(d.clients)}]`);
      pub.close();
      pub = null;
    }

    // Still every session there (a client that did not answer the gateway's pings would
    // have been hung up on by now, in a long enough run)?
    const g3 = await gauges(stack);
    if (g3.sessions !== n || g3.subscriptions !== n) fail(`gauges before closing: ${JSON.stringify(g3)}, want ${n}`);
    const dropped = (await Promise.all(clients.map((c) => c.stats()))).reduce((s, x) => s + x.dropped, 0);
    if (dropped) fail(`${dropped} sessions were closed by the gateway`);

    // close everything at once
    const wClose = cpuWindow(gwPid, clientPids);
    await Promise.all(clients.map((c) => c.close(C.phaseTimeoutMs)));
    let g2;
    await poll(async () => {
      g2 = await gauges(stack);
      return g2.sessions === 0 && g2.subscriptions === 0;
    }, C.phaseTimeoutMs, 'sessions and subscriptions gauges back to 0', 20).catch((e) => fail(e.message));
    const cl = wClose();
    const rssAtZero = rssKb(gwPid);
    // and once more a little later, in case the gateway releases memory after the fact
    await delay(2000);
    r.rssAfter = rssKb(gwPid);
    r.closeS = cl.s;
    r.rssBack = (r.rssAfter - r.rss0) / r.rss0;
    console.log(`  close all ${n}: gauges at 0 after ${num(cl.s, 2)} s [clients ${pct(cl.clients)}, gateway ${pct(cl.gw)}]; ` +
      `RSS then ${mb(rssAtZero)}, 2 s later ${mb(r.rssAfter)} = ${r.rssBack >= 0 ? '+' : ''}${num(100 * r.rssBack, 1)}% of before`);
  } catch (e) {
    fail(e.message);
    for (const c of clients) if (c.stderr.trim()) console.error(`  wsload stderr: ${c.stderr.trim().slice(0, 500)}`);
  } finally {
    if (pub) pub.close();
    if (probe) await probe.end();
    await Promise.all(clients.map((c) => c.end()));
    const stopped = await stack.stop();
    for (const p of shutdownProblems(stopped)) fail(p);
    if (!r.ok) {
      for (const [f, text] of Object.entries(stopped.logs)) {
        console.error(`--- ${f} (last lines)\n${text.trimEnd().split('\n').slice(-8).join('\n')}`);
      }
    }
  }
  return r;
}

async function main() {
  const cpus = os.cpus();
  console.log(`bench_scale: N idle subscribed sessions on one gateway (real stack: redis, backend, ` +
    `1 dispatcher, 1 gateway, 2 fetchers; C load client tests/tools/wsload)`);
  console.log(`machine: ${cpus.length} cores (${cpus[0] ? cpus[0].model.trim() : '?'}), load average ` +
    `${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; fd hard limit ${hardNofile()}; clients, backend, ` +
    'redis and fetchers share the cores: compare figures from the same machine only');
  const results = [];
  const largest = Math.max(...NS);
  for (const n of NS) {
    console.log(`N = ${n}`);
    results.push(await run(n, n === largest));
  }
  console.log('summary (CPU in % of one core; [clients] = the load clients\' CPU over the same window):');
  console.log('| N | setup sessions/s [clients] | idle gateway CPU [clients] | RSS/session | bump->EVENT p50 / p99 [clients] | RSS after close vs before | CPU per 1k deliveries/s |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.n} | ${num(r.setupRate, 0)} [${pct(r.setupClients)}] | ${pct(r.idleCpu)} [${pct(r.idleClients)}] | ` +
      `${num(r.rssPer / 1024, 2)} KB | ${num(r.p50, 2)} / ${num(r.p99, 2)} ms [${pct(r.latClients)}] | ` +
      `${r.rssBack >= 0 ? '+' : ''}${num(100 * r.rssBack, 1)}% | ` +
      `${r.cpuPer1k !== undefined ? `${pct(r.cpuPer1k)} (at ${num(r.delRate, 0)}/s) [${pct(r.delClients)}]` : '-'} |` +
      `${r.ok ? '' : ' FAILED'}`);
  }
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

await main();
