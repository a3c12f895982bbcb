// Drives BUILD/tools/wsload (tests/tools/wsload.c), the C load client that holds thousands
// of WAMP sessions from one process: its JSON stdout lines become objects, its stdin
// commands ("stats", "close") become methods. Used by the scale benchmark and test.
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { waitFor } from '../integration/harness.mjs';

export function wsloadPath(build) {
  return path.join(build, 'tools', 'wsload');
}

// CPU seconds (user + system) of a process so far, from /proc (USER_HZ is 100 on every
// Linux ABI node runs on); NaN when it is gone.
export function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

export class WsLoad extends EventEmitter {
  // url: ws://127.0.0.1:PORT/; args: wsload options, e.g. ['--count', '1000'].
  constructor(build, url, args) {
    super();
    this.setMaxListeners(100);
    const bin = wsloadPath(build);
    if (!fs.existsSync(bin)) {
      throw new Error(`${bin} is missing: make test builds it, or make ${path.relative(process.cwd(), bin)}`);
    }
    this.child = spawn(bin, [url, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.lines = [];       // every JSON line but the per-event ones
    this.events = [];      // --print-events lines
    this.stderr = '';
    this.exit = null;
    readline.createInterface({ input: this.child.stdout }).on('line', (l) => {
      let o;
      try {
        o = JSON.parse(l);
      } catch {
        this.stderr += `unparsable line: ${l}\n`;
        return;
      }
      if ('ev' in o) this.events.push(o);
      else this.lines.push(o);
      this.emit('change');
    });
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    this.child.stdin.on('error', () => { /* exited: the exit status says why */ });
    this.exited = once(this.child, 'close').then(([code, signal]) => {
      this.exit = { code, signal };
      this.emit('change');
      return this.exit;
    });
  }

  // Resolves with the first line {event: name} after the first `from` lines.
  line(name, timeoutMs, from = 0) {
    return waitFor(() => {
      const l = this.lines.slice(from).find((x) => x.event === name);
      if (l) return l;
      if (this.exit) throw new Error(`wsload exited ${JSON.stringify(this.exit)} before "${name}": ${this.stderr.trim()}`);
      return null;
    }, timeoutMs, [this], `wsload "${name}" line`);
  }

  ready(timeoutMs) {
    return this.line('ready', timeoutMs);
  }

  async stats(timeoutMs = 10000) {
    const from = this.lines.length;
    this.child.stdin.write('stats\n');
    return this.line('stats', timeoutMs, from);
  }

  // Closes every session (close frame, then waits for the server to close the TCP).
  async close(timeoutMs = 30000) {
    const from = this.lines.length;
    this.child.stdin.write('close\n');
    return this.line('closed', timeoutMs, from);
  }

  cpuSeconds() {
    return cpuSeconds(this.pid);
  }

  // Ends the process (end of stdin: it closes what is left and exits), SIGKILL after graceMs.
  async end(graceMs = 15000) {
    if (this.exit) return this.exit;
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const st = await this.exited;
    clearTimeout(t);
    return st;
  }
}
