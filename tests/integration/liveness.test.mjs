// Connection liveness, driven by the gateway's own timer wheel (not lws's timers): a
// client that stops answering is pinged, then closed and counted; a client that answers
// pings (every websocket library does) stays, however long it says nothing itself.
// Short settings (ping after 1 s of silence, closed 2 s later) keep the test quick.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { metricSum, poll, REALM, shareStack, waitFor } from './harness.mjs';
import { EventEmitter } from 'node:events';

const HELLO = 1;
const WELCOME = 2;
const CHALLENGE = 4;
const AUTHENTICATE = 5;

let stack;

// A websocket that joins over JSON and counts the pings it receives (ws answers each
// with a pong by itself while it reads its socket).
class PingCounter {
  constructor(url) {
    this.pings = 0;
    this.msgs = [];
    this.closed = null;
    this.events = new EventEmitter();
    this.ws = new WebSocket(url, ['wamp.2.json'], { handshakeTimeout: 5000 });
    this.ws.on('ping', () => { this.pings++; this.events.emit('change'); });
    this.ws.on('message', (d) => { this.msgs.push(JSON.parse(d.toString('utf8'))); this.events.emit('change'); });
    this.ws.on('close', (code) => { this.closed = { code }; this.events.emit('change'); });
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => { this.ws.once('open', resolve); this.ws.once('error', reject); });
  }

  wait(pred, label, timeoutMs = 10000) { return waitFor(pred, timeoutMs, [this.events], label); }

  async join(token) {
    await this.opened;
    this.ws.send(JSON.stringify([HELLO, REALM, { authmethods: ['ticket'], roles: { subscriber: {} } }]));
    await this.wait(() => this.msgs.find((m) => m[0] === CHALLENGE), 'CHALLENGE');
    this.ws.send(JSON.stringify([AUTHENTICATE, token, {}]));
    await this.wait(() => this.msgs.find((m) => m[0] === WELCOME), 'WELCOME');
  }
}

async function gw() { return (await stack.metrics('gateway')).values; }
const gauge = (v, name) => metricSum(v, new RegExp(`^waymark_gateway_${name}$`));

describe('liveness: idle ping and hang-up from the timer wheel', { timeout: 120000 }, () => {
  shareStack((s) => { stack = s; }, {
    stackOpts: { fetchers: 1, extraEnv: { WAYMARK_PING_INTERVAL_S: '1', WAYMARK_PING_TIMEOUT_S: '2' } },
    startTimeoutMs: 90000, check: true,
  });

  test('a silent client is pinged, then closed and counted; one that answers pings stays', async () => {
    const v0 = await gw();
    const answering = new PingCounter(stack.wsUrl);
    const silent = new PingCounter(stack.wsUrl);
    await answering.join('tok-alice');
    await silent.join('tok-bob');
    await silent.wait(() => silent.pings >= 1, 'the first ping to the client that will go silent');
    silent.ws._socket.pause();          // from now on it reads nothing and answers nothing

    const v1 = await poll(async () => {
      const v = await gw();
      return gauge(v, 'idle_closed_total') > gauge(v0, 'idle_closed_total') ? v : null;
    }, 20000, 'idle_closed_total to move');
    assert.equal(gauge(v1, 'idle_closed_total') - gauge(v0, 'idle_closed_total'), 1,
      'exactly the silent client was closed');
    await poll(async () => (gauge(await gw(), 'sessions') === 1 ? true : null), 10000,
      'the sessions gauge to count only the answering client');

    // The answering client said nothing itself the whole time: the pongs kept it.
    const before = answering.pings;
    await answering.wait(() => answering.pings >= before + 2, 'two more pings to the answering client');
    assert.equal(answering.closed, null, 'the client that answers pings is still open');
    answering.ws.close();
    silent.ws.terminate();
  });
});
