// Proxy benchmark: Sluice's gateway against a direct call and an nginx reverse proxy, same mock upstream, same run.
// A second Sluice with full inspection (detection on, enforce policy) is measured beside the plain one, at maximum
// throughput and at a fixed request rate.
// Each server runs in its own child process so the load generator never shares an event loop with what it measures.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { App, closeApp, listenPort } from '../src/http/uws';
import { startSluice } from '../src/sluice';
import { defaultConfig, type Config } from '../src/config/schema';
import { parseConfig } from '../src/config/load';
import { Children } from './children';
import { canConnect, freePort } from './ports';
import { cpuSeconds, machineBusySeconds, sumCpuSeconds } from './cpu';
import { CHAT_PATH, MOCK_RESPONSE, REQUEST_BODY, routeMockProvider } from './payloads';


// ---------------------------------------------------------------------------------------------
// Child roles. Children exit when the IPC channel drops, so a crashed or killed bench leaves nothing behind.

/** `pid` is the measured process when it is not the child itself (nginx under its guard). */
type ChildMsg = { type: 'ready'; port: number; url: string; pid?: number; admin?: string } | { type: 'error'; message: string };

function send(msg: ChildMsg): void {
  process.send?.(msg);
}

/** Listens on a free loopback port, reports it to the bench over IPC, and exits when told or orphaned. */
function serveChild(app: ReturnType<typeof App>, what: string): void {
  app.listen('127.0.0.1', 0, (socket) => {
    if (!socket) {
      send({ type: 'error', message: `${what} cannot listen` });
      process.exit(1);
    }
    const port = listenPort(socket);
    send({ type: 'ready', port, url: `http://127.0.0.1:${port}` });
  });
  const stop = () => {
    closeApp(app);
    process.exit(0);
  };
  process.on('message', (m) => m === 'stop' && stop());
  process.on('disconnect', stop);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function runMock(): void {
  const app = App();
  routeMockProvider(app);
  serveChild(app, 'mock upstream');
}

/**
 * The floor of this design: uWS in front, one undici Pool behind, nothing else (no routing, adapters,
 * exchange records). Measured in the same run so Sluice's own cost reads as a ratio to it.
 */
function runBareRelay(mockOrigin: string): void {
  const pool = new Pool(mockOrigin, { connections: 128, pipelining: 1 });
  const app = App();
  app.post('/openai/*', (res, req) => {
    const path = req.getUrl().slice('/openai'.length);
    const headers: string[] = ['host', 'api.openai.com'];
    req.forEach((k, v) => {
      if (k !== 'host' && k !== 'connection' && k !== 'content-length') headers.push(k, v);
    });
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const parts: Buffer[] = [];
    res.onData((chunk, isLast) => {
      parts.push(Buffer.from(new Uint8Array(chunk)));
      if (!isLast) return;
      let status = 0;
      let raw: Buffer[] = [];
      pool.dispatch(
        { path, method: 'POST', headers, body: Buffer.concat(parts) },
        {
          onConnect() {},
          onHeaders(s: number, h: Buffer[]) {
            status = s;
            raw = h;
            return true;
          },
          onData(body: Buffer) {
            if (aborted) return true;
            res.cork(() => {
              res.writeStatus(String(status));
              for (let i = 0; i < raw.length; i += 2) {
                const k = raw[i]!.toString().toLowerCase();
                if (k !== 'content-length' && k !== 'date' && k !== 'uwebsockets') res.writeHeader(k, raw[i + 1]!.toString());
              }
              res.end(body);
            });
            return true;
          },
          onComplete() {},
          onError(err: Error) {
            if (!aborted) res.cork(() => res.writeStatus('502 Bad Gateway').end(err.message));
          },
        },
      );
    });
  });
  serveChild(app, 'bare relay');
}

/**
 * Full inspection: the built-in rule packs (detection's defaults: one worker per core, small bodies inline) and an
 * enforce policy with content rules, so every request is scanned and decided. The benchmark's clean prompt passes.
 */
const INSPECTED_CONFIG = `
destinations: { sanctioned: [openai] }
policy:
  mode: enforce
  content:
    - { id: no-secrets, action: block, categories: [credential], min_severity: high }
    - { id: watch-pii, action: alert, categories: [pii] }
detect:
  enabled: true
`;

async function runSluice(mockOrigin: string, dataDir: string, inspected: boolean): Promise<void> {
  const config: Config = inspected ? parseConfig(INSPECTED_CONFIG, 'bench inspected config') : defaultConfig();
  config.listen.proxy = { host: '127.0.0.1', port: 0 };
  config.listen.forward = { host: '127.0.0.1', port: 0 };
  config.listen.admin = { host: '127.0.0.1', port: 0 };
  // Kept out of the working tree in case Sluice starts writing audit data there.
  config.data_dir = dataDir;
  config.upstreams = { 'api.openai.com': mockOrigin };
  // The plain gateway: relay, adapters and policy, no detection (bench/scan.ts measures the detector alone).
  if (!inspected) config.detect.enabled = false;
  const sluice = await startSluice({ config });
  send({ type: 'ready', port: sluice.ports.proxy, url: sluice.gatewayUrl, admin: sluice.adminUrl });
  let stopping = false;
  // A clean exit (not a kill) is what lets --cpu-prof write its profile.
  const stop = () => {
    if (stopping) return;
    stopping = true;
    sluice.stop(1000).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('message', (m) => m === 'stop' && stop());
  process.on('disconnect', stop);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping in the bench: every child is registered here and killed on any way out.


function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

const kids = new Children(log, 1500);

function forkRole(
  role: string,
  args: string[],
  execArgv: string[] = [],
  readyMs = 15_000,
): Promise<{ child: ChildProcess; port: number; url: string; pid: number | undefined; admin: string | undefined }> {
  // Children's stdout goes to our stderr: stdout carries nothing but the result line.
  const child = fork(__filename, ['--role', role, ...args], { stdio: ['ignore', 2, 2, 'ipc'], execArgv });
  kids.all.add(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} child did not report ready within ${readyMs / 1000} s`)), readyMs);
    child.once('message', (m: ChildMsg) => {
      clearTimeout(timer);
      if (m.type === 'ready') resolve({ child, port: m.port, url: m.url, pid: m.pid ?? child.pid, admin: m.admin });
      else reject(new Error(`${role} child: ${m.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${role} child exited before ready (code ${code}, signal ${signal})`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// nginx baseline: one worker, keep-alive upstream, no logging, so it is the best case of a plain reverse proxy.

function findNginx(): string | null {
  const candidates = [process.env.BENCH_NGINX, '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx', '/usr/bin/nginx'];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return null;
}

async function startNginx(bin: string, dir: string, mockPort: number): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const ngDir = join(dir, 'nginx');
  mkdirSync(ngDir, { recursive: true });
  const p = (name: string) => join(ngDir, name);
  // master_process off: one process that is the single worker, so its CPU is exactly what /proc shows
  // and one kill ends it. keepalive_requests is raised on both sides because uWS/undici never recycle
  // connections by count; nginx's default of 1000 would add reconnects the other targets do not pay.
  const conf = `
worker_processes 1;
daemon off;
master_process off;
pid ${p('nginx.pid')};
error_log ${p('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${p('client_body')};
  proxy_temp_path ${p('proxy')};
  fastcgi_temp_path ${p('fastcgi')};
  uwsgi_temp_path ${p('uwsgi')};
  scgi_temp_path ${p('scgi')};
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream mock {
    server 127.0.0.1:${mockPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location /openai/ {
      proxy_pass http://mock/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  writeFileSync(p('nginx.conf'), conf);
  const child = spawn(bin, ['-p', `${ngDir}/`, '-e', p('error.log'), '-c', p('nginx.conf')], { stdio: ['ignore', 2, 2] });
  kids.all.add(child);
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = `nginx exited (code ${code}, signal ${signal})`;
  });
  child.once('error', (err) => {
    exited = `nginx failed to start: ${err.message}`;
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) break;
    if (await canConnect(port)) return { child, url: `http://127.0.0.1:${port}` };
    await sleep(50);
  }
  let errLog = '';
  try {
    errLog = readFileSync(p('error.log'), 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    // no log written
  }
  throw new Error(`${exited ?? 'nginx did not accept connections within 10 s'}${errLog ? `: ${errLog}` : ''}`);
}

/**
 * nginx runs under a small Node guard so it goes away with the IPC channel, like the other children,
 * even when the bench itself is SIGKILLed (nginx does not notice its parent dying).
 */
async function runNginxGuard(bin: string, dir: string, mockPort: number): Promise<void> {
  process.on('exit', () => kids.killAllNow('SIGKILL'));
  const ng = await startNginx(bin, dir, mockPort);
  const port = Number(new URL(ng.url).port);
  send({ type: 'ready', port, url: ng.url, pid: ng.child.pid });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(0), 1000);
    ng.child.once('exit', () => {
      clearTimeout(timer);
      process.exit(0);
    });
    ng.child.kill('SIGTERM'); // fast shutdown; the exit handler SIGKILLs it if it lingers
  };
  ng.child.once('exit', () => {
    if (!stopping) process.exit(1);
  });
  process.on('message', (m) => m === 'stop' && stop());
  process.on('disconnect', stop);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

// ---------------------------------------------------------------------------------------------
// Measurement.

/**
 * Latency histogram at 10 µs resolution: autocannon's own histogram keeps whole milliseconds,
 * which cannot tell a 1.2 ms p50 from a 1.9 ms one at these speeds.
 */
class LatencyHist {
  private static readonly BUCKETS = 1 << 20; // 10 µs × 2^20 ≈ 10.5 s, autocannon's default timeout
  private readonly counts = new Uint32Array(LatencyHist.BUCKETS);
  total = 0;

  record(ms: number): void {
    const i = Math.min(LatencyHist.BUCKETS - 1, Math.max(0, Math.round(ms * 100)));
    this.counts[i]!++;
    this.total++;
  }

  percentile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i / 100;
    }
    return NaN;
  }
}

interface RunStats {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
  cpu_us_per_req: number | null;
  foreign_cpu: number | null;
  /** 2xx completions in the busiest 10 ms of the run, per second: how evenly a fixed-rate run spread its load. */
  peak_10ms_rps: number;
  /** Paced runs: how late the generator sent, p99 (timer granularity and its own event loop). */
  send_lag_p99_ms?: number;
}

/** The bench, its children and nginx: everything else busy on the machine during a run is noise. */
const ownPids: number[] = [process.pid];
const ownSeconds = (): number | null => sumCpuSeconds(ownPids);

/** CPU of the measured process and foreign load on the machine, from the start of a run to `stop`. */
function cpuMeter(pid: number | undefined): (ok: number) => Pick<RunStats, 'cpu_us_per_req' | 'foreign_cpu'> {
  const cpu0 = cpuSeconds(pid);
  const busy0 = machineBusySeconds();
  const own0 = ownSeconds();
  const t0 = performance.now();
  return (ok) => {
    const cpu1 = cpuSeconds(pid);
    const busy1 = machineBusySeconds();
    const own1 = ownSeconds();
    const wall = (performance.now() - t0) / 1000;
    return {
      cpu_us_per_req: cpu0 !== null && cpu1 !== null && ok > 0 ? ((cpu1 - cpu0) * 1e6) / ok : null,
      foreign_cpu:
        busy0 !== null && busy1 !== null && own0 !== null && own1 !== null ? Math.max(0, busy1 - busy0 - (own1 - own0)) / wall : null,
    };
  };
}

/** Completions per 10 ms slot of a run, for `peak_10ms_rps`. */
class Slots {
  private readonly counts: Uint32Array;
  private readonly t0: number;

  constructor(seconds: number, t0 = performance.now()) {
    this.counts = new Uint32Array(Math.ceil(seconds * 100) + 1000);
    this.t0 = t0;
  }

  record(now: number): void {
    const i = Math.floor((now - this.t0) / 10);
    if (i >= 0 && i < this.counts.length) this.counts[i]!++;
  }

  peakPerSecond(): number {
    let max = 0;
    for (const c of this.counts) if (c > max) max = c;
    return max * 100;
  }
}

/**
 * autocannon, closed loop: `connections` requests in flight for `seconds`. With `overallRate` each connection
 * sends at most its share per second; autocannon resets that quota on a 1 s timer, so each second's quota goes out
 * as fast as the target answers and the rest of the second is idle (`peak_10ms_rps` shows it).
 */
function load(url: string, seconds: number, connections: number, pid?: number, overallRate?: number): Promise<RunStats> {
  return new Promise((resolve, reject) => {
    const hist = new LatencyHist();
    const meter = cpuMeter(pid);
    const slots = new Slots(seconds);
    const inst = autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: REQUEST_BODY,
        connections,
        pipelining: 1,
        duration: seconds,
        ...(overallRate ? { overallRate } : {}),
      },
      (err, result) => {
        if (err) return reject(err);
        const ok = result['2xx'];
        resolve({
          // Only 2xx count as throughput: a proxy answering errors fast must not look fast.
          rps: result.duration > 0 ? ok / result.duration : 0,
          p50_ms: hist.percentile(0.5),
          p99_ms: hist.percentile(0.99),
          errors: result.errors,
          non2xx: result.non2xx,
          ...meter(ok),
          peak_10ms_rps: slots.peakPerSecond(),
        });
      },
    );
    inst.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) {
        hist.record(ms);
        slots.record(performance.now());
      }
    });
  });
}

/**
 * Open loop at a fixed rate, evenly spaced: request i is due at i/rate seconds and is sent on the first 1 ms tick at
 * or after that (undici Pool, up to `connections` connections, a new one only when all are busy). Latency runs from
 * the send to the last body byte, 2xx only, like autocannon's. The warm-up runs first on the same pool, discarded.
 */
async function paced(url: string, seconds: number, warmup: number, rate: number, connections: number, pid?: number): Promise<RunStats> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections, pipelining: 1 });
  const headers = { 'content-type': 'application/json' };
  const run = async (secs: number, measured: boolean): Promise<RunStats> => {
    const hist = new LatencyHist();
    const lag = new LatencyHist();
    const meter = measured ? cpuMeter(pid) : null;
    const t0 = performance.now();
    const slots = new Slots(secs, t0);
    const end = t0 + secs * 1000;
    let ok = 0;
    let non2xx = 0;
    let errors = 0;
    let sent = 0;
    const pending = new Set<Promise<void>>();
    const fire = (due: number) => {
      const start = performance.now();
      lag.record(start - due);
      const p: Promise<void> = pool
        .request({ path: u.pathname, method: 'POST', headers, body: REQUEST_BODY })
        .then(async (r) => {
          await r.body.arrayBuffer();
          const now = performance.now();
          if (r.statusCode >= 200 && r.statusCode < 300) {
            ok++;
            hist.record(now - start);
            slots.record(now);
          } else non2xx++;
        })
        .catch(() => {
          errors++;
        })
        .finally(() => pending.delete(p));
      pending.add(p);
    };
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        const due = Math.floor(((Math.min(now, end) - t0) * rate) / 1000);
        while (sent < due) fire(t0 + (sent++ * 1000) / rate);
        if (now >= end) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 1);
      tick();
    });
    // What was sent in the window is waited for (autocannon's timeout, 10 s) and counted; late answers are latency.
    await Promise.race([Promise.all([...pending]), sleep(10_000)]);
    errors += pending.size;
    return {
      rps: ok / secs,
      p50_ms: hist.percentile(0.5),
      p99_ms: hist.percentile(0.99),
      errors,
      non2xx,
      ...(meter ? meter(ok) : { cpu_us_per_req: null, foreign_cpu: null }),
      peak_10ms_rps: slots.peakPerSecond(),
      send_lag_p99_ms: lag.percentile(0.99),
    };
  };
  try {
    await run(warmup, false);
    return await run(seconds, true);
  } finally {
    await pool.destroy().catch(() => undefined);
  }
}

/** One request per target before the load: a proxy that answers the wrong bytes would otherwise benchmark fine. */
async function preflight(name: string, url: string): Promise<string | null> {
  try {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: REQUEST_BODY });
    const body = Buffer.from(await r.arrayBuffer());
    if (r.status !== 200) return `${name}: preflight got HTTP ${r.status}: ${body.toString('utf8', 0, 200)}`;
    if (!body.equals(MOCK_RESPONSE)) return `${name}: preflight response body differs from the mock's (${body.length} vs ${MOCK_RESPONSE.length} bytes)`;
    return null;
  } catch (err) {
    return `${name}: preflight failed: ${(err as Error).message}`;
  }
}

/** A request the inspected Sluice must refuse: a live-looking AWS access key id in the user message. */
const SECRET_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Why does this fail? aws_access_key_id = AKIAQ3EGUS2Z4KXGJHWB and the region is eu-west-1.' }],
});

interface SluiceStats {
  policy?: { mode?: string; decisions?: Record<string, number>; failures?: Record<string, { open: number; closed: number }> };
  detection?: { engine?: string; rules?: number; threads?: number; inline?: number; pooled?: number; errors?: Record<string, number> } | null;
}

async function sluiceStats(admin: string | undefined): Promise<SluiceStats | null> {
  if (!admin) return null;
  try {
    const r = await fetch(`${admin}/stats`);
    return r.ok ? ((await r.json()) as SluiceStats) : null;
  } catch {
    return null;
  }
}

const detectorCalls = (s: SluiceStats | null): number | null =>
  s?.detection && typeof s.detection.inline === 'number' && typeof s.detection.pooled === 'number' ? s.detection.inline + s.detection.pooled : null;

/**
 * Proves the inspected Sluice inspects: a request with an AWS key must be blocked (403), a clean one forwarded. Also
 * counts detector calls per clean exchange: the request scan is one call; more means something else on the
 * exchange (the response) reached the detector too.
 */
async function inspectionPreflight(url: string, admin: string | undefined, notes: string[]) {
  const info: {
    engine?: string;
    rules?: number;
    threads?: number;
    policy_mode?: string;
    preflight_secret_status: number | null;
    preflight_clean_status: number | null;
    detector_calls_per_exchange: number | null;
    response_inspection?: boolean;
  } = { preflight_secret_status: null, preflight_clean_status: null, detector_calls_per_exchange: null };
  try {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: SECRET_BODY });
    const text = await r.text();
    info.preflight_secret_status = r.status;
    if (r.status !== 403) notes.push(`sluice_inspected: a request with an AWS access key got HTTP ${r.status}, not 403 (blocked): ${text.slice(0, 200)}`);
  } catch (err) {
    notes.push(`sluice_inspected: the secret preflight failed: ${(err as Error).message}`);
  }
  const before = await sluiceStats(admin);
  const n = 20;
  let clean: number | null = null;
  for (let i = 0; i < n; i++) {
    try {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: REQUEST_BODY });
      await r.arrayBuffer();
      if (clean === null || r.status !== 200) clean = r.status;
    } catch {
      clean = 0;
    }
  }
  info.preflight_clean_status = clean;
  if (clean !== 200) notes.push(`sluice_inspected: a clean request got HTTP ${clean}, not 200`);
  await sleep(300); // anything the exchange scans after the response has gone out
  const after = await sluiceStats(admin);
  const c0 = detectorCalls(before);
  const c1 = detectorCalls(after);
  if (after?.detection) {
    info.engine = after.detection.engine;
    info.rules = after.detection.rules;
    info.threads = after.detection.threads;
  }
  info.policy_mode = after?.policy?.mode;
  if (c0 === null || c1 === null) {
    notes.push('sluice_inspected: /stats shows no detection counters; cannot confirm the detector runs');
  } else {
    info.detector_calls_per_exchange = round((c1 - c0) / n, 2);
    if (c1 - c0 < n) notes.push(`sluice_inspected: only ${c1 - c0} detector calls for ${n} clean requests`);
    // Only a positive answer is certain: a response scan that bypasses the Inspector's counters would not show here.
    if (c1 - c0 >= 2 * n) info.response_inspection = true;
  }
  return info;
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round(x: number, digits: number): number | null {
  if (!Number.isFinite(x)) return null;
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}

function summarize(runs: RunStats[]) {
  const cpu = runs.map((r) => r.cpu_us_per_req).filter((x): x is number => x !== null);
  const foreign = runs.map((r) => r.foreign_cpu).filter((x): x is number => x !== null);
  return {
    rps: round(median(runs.map((r) => r.rps)), 0),
    p50_ms: round(median(runs.map((r) => r.p50_ms)), 2),
    p99_ms: round(median(runs.map((r) => r.p99_ms)), 2),
    // Totals, not medians: any error in any round must show.
    errors: runs.reduce((a, r) => a + r.errors, 0),
    non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
    cpu_us_per_req: cpu.length ? round(median(cpu), 1) : null,
    rps_rounds: runs.map((r) => round(r.rps, 0)),
    // Cores' worth of CPU used by other processes (and hypervisor steal) during the measured runs.
    foreign_cpu_max: foreign.length ? round(Math.max(...foreign), 2) : null,
  };
}

/** Fixed-rate runs of one target: medians over rounds, like summarize(), plus how close to the rate they ran. */
function summarizeFixed(runs: RunStats[]) {
  const cpu = runs.map((r) => r.cpu_us_per_req).filter((x): x is number => x !== null);
  const foreign = runs.map((r) => r.foreign_cpu).filter((x): x is number => x !== null);
  const lag = runs.map((r) => r.send_lag_p99_ms).filter((x): x is number => x !== undefined);
  return {
    achieved_rps: round(median(runs.map((r) => r.rps)), 0),
    p50_ms: round(median(runs.map((r) => r.p50_ms)), 2),
    p99_ms: round(median(runs.map((r) => r.p99_ms)), 2),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
    cpu_us_per_req: cpu.length ? round(median(cpu), 1) : null,
    peak_10ms_rps: round(median(runs.map((r) => r.peak_10ms_rps)), 0),
    ...(lag.length ? { send_lag_p99_ms: round(median(lag), 2) } : {}),
    p99_rounds: runs.map((r) => round(r.p99_ms, 2)),
    achieved_rps_rounds: runs.map((r) => round(r.rps, 0)),
    foreign_cpu_max: foreign.length ? round(Math.max(...foreign), 2) : null,
  };
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Target {
  name: 'direct' | 'nginx' | 'bare_relay' | 'sluice' | 'sluice_inspected';
  url: string;
  pid: number | undefined;
}

async function main(): Promise<void> {
  kids.installExitHandlers();
  const duration = envNumber('BENCH_DURATION', 10);
  const rounds = Math.round(envNumber('BENCH_ROUNDS', 3));
  const connections = Math.round(envNumber('BENCH_CONNECTIONS', 32));
  const warmup = envNumber('BENCH_WARMUP', 2);
  const rate = Math.round(envNumber('BENCH_RATE', 1000));
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const notes: string[] = [];

  const tempDir = (kids.tempDir = mkdtempSync(join(tmpdir(), 'sluice-bench-')));
  const mock = await forkRole('mock', []);
  log(`mock upstream on ${mock.url}`);
  const sluiceArgv = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const sluiceDataDir = join(tempDir, 'sluice-data');
  const sluice = await forkRole('sluice', [mock.url, sluiceDataDir], sluiceArgv);
  ownPids.push(mock.pid!, sluice.pid!);
  log(`sluice gateway on ${sluice.url}${profileDir ? ` (cpu profile to ${profileDir})` : ''}`);
  // Compiling the rule packs (no cache in a fresh data dir) takes seconds before the port opens.
  const inspected = await forkRole('sluice', [mock.url, join(tempDir, 'sluice-inspected-data'), 'inspected'], sluiceArgv, 120_000);
  ownPids.push(inspected.pid!);
  log(`sluice gateway with inspection on ${inspected.url}`);

  const targets: Target[] = [{ name: 'direct', url: `${mock.url}${CHAT_PATH}`, pid: mock.pid }];
  const nginxBin = findNginx();
  if (!nginxBin) {
    notes.push('nginx baseline skipped: no nginx binary found (install nginx-light or set BENCH_NGINX)');
  } else {
    try {
      const ng = await forkRole('nginx', [nginxBin, tempDir, String(mock.port)]);
      ownPids.push(ng.child.pid!, ng.pid!);
      log(`nginx (${nginxBin}) on ${ng.url}`);
      targets.push({ name: 'nginx', url: `${ng.url}/openai${CHAT_PATH}`, pid: ng.pid });
    } catch (err) {
      notes.push(`nginx baseline skipped: ${(err as Error).message}`);
    }
  }
  const bare = await forkRole('bare_relay', [mock.url]);
  ownPids.push(bare.pid!);
  targets.push({ name: 'bare_relay', url: `${bare.url}/openai${CHAT_PATH}`, pid: bare.pid });
  targets.push({ name: 'sluice', url: `${sluice.url}/openai${CHAT_PATH}`, pid: sluice.pid });
  targets.push({ name: 'sluice_inspected', url: `${inspected.url}/openai${CHAT_PATH}`, pid: inspected.pid });

  for (const t of targets) {
    const problem = await preflight(t.name, t.url);
    if (problem) {
      notes.push(problem);
      log(problem);
    }
  }
  const inspectedUrl = targets.find((t) => t.name === 'sluice_inspected')!.url;
  const inspection = await inspectionPreflight(inspectedUrl, inspected.admin, notes);
  log(`inspection preflight: ${JSON.stringify(inspection)}`);
  const statsBefore = await sluiceStats(inspected.admin);

  const results = new Map<string, RunStats[]>(targets.map((t) => [t.name, []]));
  const fixedNames = ['direct', 'bare_relay', 'sluice', 'sluice_inspected'] as const;
  const fixedAc = new Map<string, RunStats[]>(fixedNames.map((n) => [n, []]));
  const fixedPaced = new Map<string, RunStats[]>(fixedNames.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    // Rotating the order gives every target each slot once per len(targets) rounds, so drift
    // on a shared machine (thermal, neighbours) does not always land on the same target.
    const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
    for (const t of order) {
      log(`round ${r + 1}/${rounds} ${t.name}: warm-up ${warmup}s`);
      await load(t.url, warmup, connections);
      log(`round ${r + 1}/${rounds} ${t.name}: measuring ${duration}s`);
      const s = await load(t.url, duration, connections, t.pid);
      log(
        `round ${r + 1}/${rounds} ${t.name}: ${s.rps.toFixed(0)} req/s p50 ${s.p50_ms} ms p99 ${s.p99_ms} ms` +
          ` errors ${s.errors} non2xx ${s.non2xx}${s.cpu_us_per_req !== null ? ` cpu ${s.cpu_us_per_req.toFixed(1)} µs/req` : ''}` +
          `${s.foreign_cpu !== null ? ` foreign ${s.foreign_cpu.toFixed(2)} cores` : ''}`,
      );
      results.get(t.name)!.push(s);
    }
    // Latency at a fixed rate, far below saturation: what inspection adds to a request, not to a queue.
    // bare_relay is the floor of any proxy hop here: what it adds to direct is the hop, not Sluice.
    const fixedTargets = targets.filter((t) => (fixedNames as readonly string[]).includes(t.name));
    for (let i = 0; i < fixedTargets.length; i++) {
      const t = fixedTargets[(i + r) % fixedTargets.length]!;
      log(`round ${r + 1}/${rounds} ${t.name} at ${rate} req/s (autocannon overallRate): warm-up ${warmup}s, measuring ${duration}s`);
      await load(t.url, warmup, connections, undefined, rate);
      const a = await load(t.url, duration, connections, t.pid, rate);
      fixedAc.get(t.name)!.push(a);
      log(`round ${r + 1}/${rounds} ${t.name} at ${rate} req/s (paced): warm-up ${warmup}s, measuring ${duration}s`);
      const p = await paced(t.url, duration, warmup, rate, connections, t.pid);
      fixedPaced.get(t.name)!.push(p);
      for (const [how, s] of [['autocannon', a], ['paced', p]] as const)
        log(
          `round ${r + 1}/${rounds} ${t.name} ${how}: ${s.rps.toFixed(0)} req/s p50 ${s.p50_ms} ms p99 ${s.p99_ms} ms peak ${s.peak_10ms_rps} req/s per 10 ms` +
            ` errors ${s.errors} non2xx ${s.non2xx}${s.cpu_us_per_req !== null ? ` cpu ${s.cpu_us_per_req.toFixed(1)} µs/req` : ''}` +
            `${s.foreign_cpu !== null ? ` foreign ${s.foreign_cpu.toFixed(2)} cores` : ''}`,
        );
    }
  }
  const statsAfter = await sluiceStats(inspected.admin);

  const direct = summarize(results.get('direct')!);
  const sl = summarize(results.get('sluice')!);
  const ng = results.has('nginx') ? summarize(results.get('nginx')!) : null;
  const br = summarize(results.get('bare_relay')!);
  const si = summarize(results.get('sluice_inspected')!);
  for (const [name, s] of [['direct', direct], ['sluice', sl], ['nginx', ng], ['bare_relay', br], ['sluice_inspected', si]] as const) {
    if (!s) continue;
    if (s.errors > 0 || s.non2xx > 0) notes.push(`${name}: ${s.errors} errors and ${s.non2xx} non-2xx responses over all rounds`);
    // Other work on the machine shows up as one slow round; say so rather than let a median hide it.
    const rr = s.rps_rounds.filter((x): x is number => x !== null && x > 0);
    if (rr.length > 1 && Math.max(...rr) / Math.min(...rr) > 1.3)
      notes.push(`${name}: req/s varied ${Math.min(...rr)}-${Math.max(...rr)} across rounds`);
    if (s.foreign_cpu_max !== null && s.foreign_cpu_max > 0.15)
      notes.push(`${name}: other processes or hypervisor steal took up to ${s.foreign_cpu_max} cores during a run`);
  }
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? round(a / b, 3) : null);
  const fixed = (m: Map<string, RunStats[]>) => ({
    direct: summarizeFixed(m.get('direct')!),
    bare_relay: summarizeFixed(m.get('bare_relay')!),
    sluice: summarizeFixed(m.get('sluice')!),
    sluice_inspected: summarizeFixed(m.get('sluice_inspected')!),
  });
  const fixedAcOut = fixed(fixedAc);
  const fixedPacedOut = fixed(fixedPaced);
  const added = (f: ReturnType<typeof fixed>) =>
    f.sluice_inspected.p99_ms !== null && f.direct.p99_ms !== null ? round(f.sluice_inspected.p99_ms - f.direct.p99_ms, 2) : null;
  for (const [how, f] of [['autocannon', fixedAcOut], ['paced', fixedPacedOut]] as const) {
    for (const [name, s] of Object.entries(f)) {
      const where = `${name} at ${rate} req/s (${how})`;
      if (s.errors > 0 || s.non2xx > 0) notes.push(`${where}: ${s.errors} errors and ${s.non2xx} non-2xx responses over all rounds`);
      if (s.achieved_rps !== null && Math.abs(s.achieved_rps - rate) > 0.05 * rate) notes.push(`${where}: achieved ${s.achieved_rps} req/s, not ${rate}`);
      if (s.foreign_cpu_max !== null && s.foreign_cpu_max > 0.15)
        notes.push(`${where}: other processes or hypervisor steal took up to ${s.foreign_cpu_max} cores during a run`);
    }
    // autocannon's load shape shows in its completions; a paced run's peaks are catch-up after a stall, and its
    // shape is the send lag.
    const peak = Math.max(...Object.values(f).map((s) => s.peak_10ms_rps ?? 0));
    if (how === 'autocannon' && peak > 3 * rate)
      notes.push(`autocannon fixed-rate runs were bursts: up to ${peak} req/s within 10 ms against a mean of ${rate} (each second's quota sent at once)`);
    const lag = Math.max(...Object.values(f).map((s) => s.send_lag_p99_ms ?? 0));
    if (how === 'paced' && lag > 2) notes.push(`paced runs: the load generator sent up to ${lag} ms late (p99), its own event loop or CPU was held up`);
  }
  // Every scanned request must have been decided by the policy with the detector working, or the
  // inspected numbers would be those of an inspection that failed open.
  const delta = (k: (s: SluiceStats | null) => number | undefined) => {
    const a = k(statsBefore);
    const b = k(statsAfter);
    return a !== undefined && b !== undefined ? b - a : null;
  };
  const detectorErrors = delta((s) => (s?.detection?.errors ? Object.values(s.detection.errors).reduce((x, y) => x + y, 0) : undefined));
  const inspectFailures = delta((s) =>
    s?.policy?.failures ? Object.values(s.policy.failures).reduce((x, y) => x + y.open + y.closed, 0) : s?.policy ? 0 : undefined,
  );
  const decided = delta((s) => (s?.policy?.decisions ? Object.values(s.policy.decisions).reduce((x, y) => x + y, 0) : undefined));
  const scans = delta((s) => detectorCalls(s) ?? undefined);
  if (detectorErrors) notes.push(`sluice_inspected: ${detectorErrors} detector errors (timeouts, crashes, overload) during the load`);
  if (inspectFailures) notes.push(`sluice_inspected: ${inspectFailures} exchanges with an inspection failure during the load`);
  const out_inspection = {
    ...inspection,
    // Over the whole load (warm-ups included): every exchange is scanned and decided.
    load_exchanges_decided: decided,
    load_detector_calls: scans,
    load_detector_errors: detectorErrors,
    load_inspect_failures: inspectFailures,
    decisions: statsAfter?.policy?.decisions ?? null,
  };
  const out = {
    bench: 'proxy',
    node: process.version,
    cpus: cpus().length,
    duration_s: duration,
    rounds,
    connections,
    warmup_s: warmup,
    direct,
    sluice: sl,
    nginx: ng,
    bare_relay: br,
    ratio_sluice_direct: ratio(sl.rps, direct.rps),
    ratio_sluice_bare_relay: ratio(sl.rps, br.rps),
    ratio_bare_relay_nginx: ng ? ratio(br.rps, ng.rps) : null,
    ratio_sluice_nginx: ng ? ratio(sl.rps, ng.rps) : null,
    p99_sluice_over_nginx: ng ? ratio(sl.p99_ms, ng.p99_ms) : null,
    sluice_inspected: si,
    ratio_inspected_vs_gateway: ratio(si.rps, sl.rps),
    fixed_rate: { rate, duration_s: duration, connections, autocannon: fixedAcOut, paced: fixedPacedOut },
    // Latency inspection adds at `rate` req/s: inspected Sluice p99 minus direct p99, autocannon overallRate.
    added_p99_ms: added(fixedAcOut),
    // The same from the evenly paced runs.
    added_p99_ms_paced: added(fixedPacedOut),
    inspection: out_inspection,
    notes,
  };
  await kids.stopAll(3000);
  // Exit only once the line is flushed: a piped stdout may still be writing when main() returns.
  await new Promise<void>((resolve) => process.stdout.write(JSON.stringify(out) + '\n', () => resolve()));
}

// ---------------------------------------------------------------------------------------------

const roleAt = process.argv.indexOf('--role');
if (roleAt >= 0) {
  const role = process.argv[roleAt + 1];
  const rest = process.argv.slice(roleAt + 2);
  if (role === 'mock') runMock();
  else if (role === 'bare_relay') runBareRelay(rest[0]!);
  else if (role === 'sluice')
    runSluice(rest[0]!, rest[1]!, rest[2] === 'inspected').catch((err: Error) => {
      send({ type: 'error', message: err.stack ?? err.message });
      process.exit(1);
    });
  else if (role === 'nginx')
    runNginxGuard(rest[0]!, rest[1]!, Number(rest[2])).catch((err: Error) => {
      send({ type: 'error', message: err.message });
      process.exit(1);
    });
  else {
    process.stderr.write(`unknown role ${role}\n`);
    process.exit(2);
  }
} else {
  kids.runMain(main);
}
