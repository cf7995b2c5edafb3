// Proxy benchmark: Sluice's gateway against a direct call and an nginx reverse proxy, same mock upstream, same run.
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
import { defaultConfig } from '../src/config/schema';
import { Children } from './children';
import { canConnect, freePort } from './ports';
import { cpuSeconds, machineBusySeconds, sumCpuSeconds } from './cpu';
import { CHAT_PATH, MOCK_RESPONSE, REQUEST_BODY, routeMockProvider } from './payloads';


// ---------------------------------------------------------------------------------------------
// Child roles. Children exit when the IPC channel drops, so a crashed or killed bench leaves nothing behind.

/** `pid` is the measured process when it is not the child itself (nginx under its guard). */
type ChildMsg = { type: 'ready'; port: number; url: string; pid?: number } | { type: 'error'; message: string };

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

async function runSluice(mockOrigin: string, dataDir: string): Promise<void> {
  const config = defaultConfig();
  config.listen.proxy = { host: '127.0.0.1', port: 0 };
  config.listen.forward = { host: '127.0.0.1', port: 0 };
  config.listen.admin = { host: '127.0.0.1', port: 0 };
  // Kept out of the working tree in case Sluice starts writing audit data there.
  config.data_dir = dataDir;
  config.upstreams = { 'api.openai.com': mockOrigin };
  // The relay path only: no pipeline stage calls the detector yet (bench/scan.ts measures detection).
  config.detect.enabled = false;
  const sluice = await startSluice({ config });
  send({ type: 'ready', port: sluice.ports.proxy, url: sluice.gatewayUrl });
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

function forkRole(role: string, args: string[], execArgv: string[] = []): Promise<{ child: ChildProcess; port: number; url: string; pid: number | undefined }> {
  // Children's stdout goes to our stderr: stdout carries nothing but the result line.
  const child = fork(__filename, ['--role', role, ...args], { stdio: ['ignore', 2, 2, 'ipc'], execArgv });
  kids.all.add(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} child did not report ready within 15 s`)), 15_000);
    child.once('message', (m: ChildMsg) => {
      clearTimeout(timer);
      if (m.type === 'ready') resolve({ child, port: m.port, url: m.url, pid: m.pid ?? child.pid });
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
}

/** The bench, its children and nginx: everything else busy on the machine during a run is noise. */
const ownPids: number[] = [process.pid];
const ownSeconds = (): number | null => sumCpuSeconds(ownPids);

function load(url: string, seconds: number, connections: number, pid?: number): Promise<RunStats> {
  return new Promise((resolve, reject) => {
    const hist = new LatencyHist();
    const cpu0 = cpuSeconds(pid);
    const busy0 = machineBusySeconds();
    const own0 = ownSeconds();
    const t0 = performance.now();
    const inst = autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: REQUEST_BODY,
        connections,
        pipelining: 1,
        duration: seconds,
      },
      (err, result) => {
        if (err) return reject(err);
        const cpu1 = cpuSeconds(pid);
        const busy1 = machineBusySeconds();
        const own1 = ownSeconds();
        const wall = (performance.now() - t0) / 1000;
        const ok = result['2xx'];
        resolve({
          // Only 2xx count as throughput: a proxy answering errors fast must not look fast.
          rps: result.duration > 0 ? ok / result.duration : 0,
          p50_ms: hist.percentile(0.5),
          p99_ms: hist.percentile(0.99),
          errors: result.errors,
          non2xx: result.non2xx,
          cpu_us_per_req: cpu0 !== null && cpu1 !== null && ok > 0 ? ((cpu1 - cpu0) * 1e6) / ok : null,
          foreign_cpu:
            busy0 !== null && busy1 !== null && own0 !== null && own1 !== null
              ? Math.max(0, busy1 - busy0 - (own1 - own0)) / wall
              : null,
        });
      },
    );
    inst.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) hist.record(ms);
    });
  });
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
  name: 'direct' | 'nginx' | 'bare_relay' | 'sluice';
  url: string;
  pid: number | undefined;
}

async function main(): Promise<void> {
  kids.installExitHandlers();
  const duration = envNumber('BENCH_DURATION', 10);
  const rounds = Math.round(envNumber('BENCH_ROUNDS', 3));
  const connections = Math.round(envNumber('BENCH_CONNECTIONS', 32));
  const warmup = envNumber('BENCH_WARMUP', 2);
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

  for (const t of targets) {
    const problem = await preflight(t.name, t.url);
    if (problem) {
      notes.push(problem);
      log(problem);
    }
  }

  const results = new Map<string, RunStats[]>(targets.map((t) => [t.name, []]));
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
  }

  const direct = summarize(results.get('direct')!);
  const sl = summarize(results.get('sluice')!);
  const ng = results.has('nginx') ? summarize(results.get('nginx')!) : null;
  const br = summarize(results.get('bare_relay')!);
  for (const [name, s] of [['direct', direct], ['sluice', sl], ['nginx', ng], ['bare_relay', br]] as const) {
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
    runSluice(rest[0]!, rest[1]!).catch((err: Error) => {
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
  main().then(
    () => process.exit(0),
    (err: Error) => {
      log(`failed: ${err.stack ?? err.message}`);
      kids.stopAll(1500).finally(() => process.exit(1));
    },
  );
}
