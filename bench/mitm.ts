// Interception benchmark: keep-alive requests through an intercepted CONNECT tunnel, against Sluice's own
// gateway over HTTPS, direct TLS to the mock, and (where installed) mitmdump doing the same interception;
// then the new-connection rate (CONNECT + handshake + one request) with Sluice's leaf-cache counters.
// Every server runs in its own child process; the load generator (our own keep-alive HTTP/1.1 client over
// node:tls, since autocannon cannot CONNECT) runs in this process. One JSON line on stdout at the end.

import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { SSLApp, closeApp, listenPort } from '../src/http/uws';
import { startSluice, type InterceptionStats } from '../src/sluice';
import { defaultConfig } from '../src/config/schema';
import { Children } from './children';
import { canConnect, freePort } from './ports';
import { cpuSeconds, machineBusySeconds, sumCpuSeconds } from './cpu';
import { CHAT_PATH, MOCK_RESPONSE, REQUEST_BODY, routeMockProvider } from './payloads';

/** The provider host clients CONNECT to; `upstreams` maps it to the mock. */
const PROVIDER_HOST = 'api.openai.com';

// ---------------------------------------------------------------------------------------------
// Child roles. Children exit when the IPC channel drops, so a crashed or killed bench leaves nothing behind.

type ChildMsg =
  | { type: 'ready'; port: number; forward?: number; caCert?: string; pid?: number }
  | { type: 'error'; message: string }
  | { type: 'stats'; stats: InterceptionStats };

function send(msg: ChildMsg): void {
  process.send?.(msg);
}

function onStop(stop: () => void): void {
  process.on('message', (m) => m === 'stop' && stop());
  process.on('disconnect', stop);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** The mock provider over HTTPS: uWebSockets.js with the bench CA's leaf for 127.0.0.1, same answer as bench/proxy.ts. */
function runMock(certFile: string, keyFile: string): void {
  const app = SSLApp({ cert_file_name: certFile, key_file_name: keyFile });
  routeMockProvider(app);
  app.listen('127.0.0.1', 0, (socket) => {
    if (!socket) {
      send({ type: 'error', message: 'mock upstream cannot listen (bad certificate?)' });
      process.exit(1);
    }
    send({ type: 'ready', port: listenPort(socket) });
  });
  onStop(() => {
    closeApp(app);
    process.exit(0);
  });
}

async function runSluice(mockOrigin: string, dataDir: string, upstreamCa: string, gwCert: string, gwKey: string): Promise<void> {
  const config = defaultConfig();
  config.listen.proxy = { host: '127.0.0.1', port: 0 };
  config.listen.forward = { host: '127.0.0.1', port: 0 };
  config.listen.admin = { host: '127.0.0.1', port: 0 };
  config.data_dir = dataDir;
  config.upstreams = { [PROVIDER_HOST]: mockOrigin };
  config.tls.upstream_ca = [upstreamCa];
  config.tls.gateway_cert = gwCert;
  config.tls.gateway_key = gwKey;
  // Interception and relay only: detection has its own bench (bench/scan.ts).
  config.detect.enabled = false;
  const sluice = await startSluice({ config });
  send({ type: 'ready', port: sluice.ports.proxy, forward: sluice.ports.forward, caCert: sluice.caCert });
  process.on('message', (m: unknown) => {
    if (m && typeof m === 'object' && (m as { type?: string }).type === 'stats') send({ type: 'stats', stats: sluice.interceptionStats() });
  });
  let stopping = false;
  onStop(() => {
    if (stopping) return;
    stopping = true;
    sluice.stop(1000).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

/** mitmdump runs under a small Node guard so it goes away with the IPC channel, even if the bench is SIGKILLed. */
async function runMitmGuard(bin: string, confdir: string, upstreamCa: string): Promise<void> {
  const port = await freePort();
  const args = [
    '--listen-host', '127.0.0.1',
    '--listen-port', String(port),
    '--set', `confdir=${confdir}`,
    '--set', `ssl_verify_upstream_trusted_ca=${upstreamCa}`,
    '-q',
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 2, 2] });
  let stopping = false;
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = `mitmdump exited (code ${code}, signal ${signal})`;
    if (!stopping) process.exit(1);
  });
  child.once('error', (err) => {
    exited = `mitmdump failed to start: ${err.message}`;
  });
  process.on('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  onStop(() => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(0), 2000);
    child.once('exit', () => {
      clearTimeout(timer);
      process.exit(0);
    });
    child.kill('SIGTERM');
  });
  const caCert = join(confdir, 'mitmproxy-ca-cert.pem');
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited) break;
    if (existsSync(caCert) && (await canConnect(port))) {
      send({ type: 'ready', port, caCert, pid: child.pid });
      return;
    }
    await sleep(100);
  }
  send({ type: 'error', message: exited ?? 'mitmdump did not accept connections within 30 s' });
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: every child is registered here and killed on any way out.


function log(msg: string): void {
  process.stderr.write(`[bench:mitm] ${msg}\n`);
}

const kids = new Children(log, 2500);

interface Forked {
  child: ChildProcess;
  msg: Extract<ChildMsg, { type: 'ready' }>;
}

function forkRole(role: string, args: string[], readyTimeoutMs = 20_000, execArgv: string[] = []): Promise<Forked> {
  // Children's stdout goes to our stderr: stdout carries nothing but the result line.
  const child = fork(__filename, ['--role', role, ...args], { stdio: ['ignore', 2, 2, 'ipc'], execArgv });
  kids.all.add(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} child did not report ready within ${readyTimeoutMs / 1000} s`)), readyTimeoutMs);
    const onMsg = (m: ChildMsg) => {
      if (m.type === 'stats') return;
      clearTimeout(timer);
      child.off('message', onMsg);
      if (m.type === 'ready') resolve({ child, msg: m });
      else reject(new Error(`${role} child: ${m.message}`));
    };
    child.on('message', onMsg);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${role} child exited before ready (code ${code}, signal ${signal})`));
    });
  });
}

/** Sluice's interception counters, asked of the child over IPC. */
function askStats(child: ChildProcess): Promise<InterceptionStats> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMsg);
      reject(new Error('sluice child did not answer the stats request within 5 s'));
    }, 5000);
    const onMsg = (m: ChildMsg) => {
      if (m.type !== 'stats') return;
      clearTimeout(timer);
      child.off('message', onMsg);
      resolve(m.stats);
    };
    child.on('message', onMsg);
    child.send({ type: 'stats' });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// The bench PKI: one EC P-256 CA, a leaf for the mock and one for Sluice's gateway, both for IP 127.0.0.1.

/** The mock's subjectAltName: the IP Sluice dials (`upstreams` points at https://127.0.0.1:PORT) is what it verifies. */
const MOCK_SAN = process.env.BENCH_MOCK_SAN || 'IP:127.0.0.1';

interface Pki {
  caCert: string;
  mockCert: string;
  mockKey: string;
  gwCert: string;
  gwKey: string;
}

function makePki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (n: string) => join(dir, n);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl([
    'req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=Sluice Bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const leaf = (name: string, san: string) => {
    writeFileSync(
      p(`${name}.ext`),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n` +
        `subjectAltName=${san}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`,
    );
    openssl(['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`]);
    openssl([
      'x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
      '-days', '2', '-sha256', '-extfile', p(`${name}.ext`), '-out', p(`${name}.pem`),
    ]);
  };
  leaf('mock', MOCK_SAN);
  leaf('gateway', 'IP:127.0.0.1');
  return { caCert: p('ca.pem'), mockCert: p('mock.pem'), mockKey: p('mock.key'), gwCert: p('gateway.pem'), gwKey: p('gateway.key') };
}

// ---------------------------------------------------------------------------------------------
// The load generator: keep-alive HTTP/1.1 over node:tls, one pre-built request buffer per target,
// a minimal response parser (status, Content-Length or chunked, Connection: close).

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

const enum Mode {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailer,
  Done,
}

class ResponseParser {
  status = 0;
  bodyBytes = 0;
  close = false;
  body: Buffer[] | null = null;
  private mode = Mode.Head;
  private remaining = 0;
  private pending: Buffer | null = null;

  constructor(private readonly collect: boolean) {}

  reset(): void {
    this.status = 0;
    this.bodyBytes = 0;
    this.close = false;
    this.mode = Mode.Head;
    this.remaining = 0;
    this.pending = null;
    if (this.collect) this.body = [];
  }

  /** True once the response is complete. Throws on what is not a well-formed HTTP/1.1 response. */
  feed(chunk: Buffer): boolean {
    let buf = chunk;
    let pos = 0;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    if (this.mode === Mode.Head) {
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > 65_536) throw new Error('response head over 64 KiB');
        this.pending = buf;
        return false;
      }
      this.head(buf.toString('latin1', 0, end));
      pos = end + 4;
      if ((this.mode as Mode) === Mode.Done) return true;
    }
    for (;;) {
      switch (this.mode) {
        case Mode.Length:
        case Mode.ChunkData: {
          const n = Math.min(this.remaining, buf.length - pos);
          if (n > 0) {
            this.bodyBytes += n;
            if (this.body) this.body.push(buf.subarray(pos, pos + n));
            this.remaining -= n;
            pos += n;
          }
          if (this.remaining > 0) return false;
          if (this.mode === Mode.Length) {
            this.mode = Mode.Done;
            return true;
          }
          this.mode = Mode.ChunkEnd;
          break;
        }
        case Mode.ChunkSize:
        case Mode.ChunkEnd:
        case Mode.Trailer: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol < 0) {
            if (buf.length - pos > 8192) throw new Error('chunk line over 8 KiB');
            this.pending = buf.subarray(pos);
            return false;
          }
          const line = buf.toString('latin1', pos, eol);
          pos = eol + 2;
          if (this.mode === Mode.ChunkEnd) {
            if (line !== '') throw new Error('chunk data not followed by CRLF');
            this.mode = Mode.ChunkSize;
          } else if (this.mode === Mode.ChunkSize) {
            const size = parseInt(line.split(';', 1)[0]!.trim(), 16);
            if (!Number.isFinite(size) || size < 0) throw new Error(`bad chunk size line "${line.slice(0, 40)}"`);
            if (size === 0) this.mode = Mode.Trailer;
            else {
              this.remaining = size;
              this.mode = Mode.ChunkData;
            }
          } else if (line === '') {
            this.mode = Mode.Done;
            return true;
          }
          break;
        }
        default:
          return true;
      }
    }
  }

  private head(h: string): void {
    if (!h.startsWith('HTTP/1.')) throw new Error(`not an HTTP/1.x response: "${h.slice(0, 40)}"`);
    this.status = Number(h.slice(9, 12));
    const lower = h.toLowerCase();
    const value = (name: string): string | null => {
      const at = lower.indexOf(`\r\n${name}:`);
      if (at < 0) return null;
      const from = at + name.length + 3;
      const eol = lower.indexOf('\r\n', from);
      return lower.slice(from, eol < 0 ? undefined : eol).trim();
    };
    this.close = (value('connection') ?? '').includes('close');
    const te = value('transfer-encoding');
    const cl = value('content-length');
    if (te !== null && te.includes('chunked')) this.mode = Mode.ChunkSize;
    else if (cl !== null) {
      this.remaining = Number(cl);
      if (!Number.isInteger(this.remaining) || this.remaining < 0) throw new Error(`bad content-length "${cl}"`);
      this.mode = this.remaining === 0 ? Mode.Done : Mode.Length;
    } else if (this.status === 204 || this.status === 304) this.mode = Mode.Done;
    else throw new Error(`HTTP ${this.status} response without content-length or chunked body (read-until-close is not supported)`);
  }
}

/** A measured target: how to get a ready TLS socket, and what to send on it. */
interface Endpoint {
  name: TargetName;
  /** The process whose CPU is charged to this target. */
  pid: number | undefined;
  open(): Promise<TLSSocket>;
  request: Buffer;
  /** The same request with `connection: close`, for the new-connection rate. */
  requestClose: Buffer;
}

type TargetName = 'direct_tls' | 'gateway_https' | 'intercept_connect' | 'mitmdump';

function buildRequest(path: string, host: string, close: boolean): Buffer {
  return Buffer.from(
    `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(REQUEST_BODY)}\r\n${close ? 'connection: close\r\n' : ''}\r\n${REQUEST_BODY}`,
  );
}

function tlsDirect(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ...options });
    const onErr = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.once('error', onErr);
    s.once('secureConnect', () => {
      s.off('error', onErr);
      s.setNoDelay(true);
      resolve(s);
    });
  });
}

/** CONNECT through a forward proxy, then TLS inside the tunnel, verified against `options.ca`. */
function tlsViaConnect(proxyPort: number, authority: string, options: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: '127.0.0.1', port: proxyPort });
    raw.setNoDelay(true);
    let acc: Buffer = Buffer.alloc(0);
    const cleanup = () => {
      raw.off('data', onData);
      raw.off('error', onErr);
      raw.off('close', onClose);
    };
    const onErr = (err: Error) => {
      cleanup();
      raw.destroy();
      reject(err);
    };
    const onClose = () => onErr(new Error(`proxy closed the connection before answering CONNECT ${authority}`));
    const onData = (chunk: Buffer) => {
      acc = acc.length ? Buffer.concat([acc, chunk]) : chunk;
      const end = acc.indexOf(CRLFCRLF);
      if (end < 0) {
        if (acc.length > 16_384) onErr(new Error('CONNECT response head over 16 KiB'));
        return;
      }
      const head = acc.toString('latin1', 0, end);
      if (!/^HTTP\/1\.[01] 200/.test(head)) return onErr(new Error(`CONNECT ${authority} refused: ${head.split('\r\n', 1)[0]}`));
      if (acc.length > end + 4) return onErr(new Error(`proxy sent ${acc.length - end - 4} bytes after its CONNECT 200 before the ClientHello`));
      cleanup();
      raw.pause();
      const s = tlsConnect({ socket: raw, ...options });
      const onTlsErr = (err: Error) => {
        s.destroy();
        reject(err);
      };
      s.once('error', onTlsErr);
      s.once('secureConnect', () => {
        s.off('error', onTlsErr);
        resolve(s);
      });
    };
    raw.on('data', onData);
    raw.on('error', onErr);
    raw.on('close', onClose);
    raw.once('connect', () => raw.write(`CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n\r\n`));
  });
}

const REQUEST_TIMEOUT_MS = 10_000;

class LoadState {
  measuring = false;
  stopped = false;
  ok = 0;
  non2xx = 0;
  badBody = 0;
  errors = 0;
  /** Connections the server closed between requests (not errors, but each costs a new handshake). */
  reconnects = 0;
  readonly errorKinds = new Map<string, number>();
  hist: RecordableHistogram = createHistogram();
  readonly sockets = new Set<TLSSocket>();

  resetCounters(): void {
    this.ok = this.non2xx = this.badBody = this.errors = this.reconnects = 0;
    this.errorKinds.clear();
    this.hist = createHistogram();
  }

  complete(status: number, bodyBytes: number, ms: number): void {
    if (!this.measuring) return;
    if (status < 200 || status > 299) this.non2xx++;
    else if (bodyBytes !== MOCK_RESPONSE.length) this.badBody++;
    else {
      this.ok++;
      this.hist.record(Math.max(1, Math.round(ms * 1e6)));
    }
  }

  fail(err: unknown): void {
    if (!this.measuring) return;
    this.errors++;
    const e = err as Error & { code?: string };
    const kind = (e.code ? `${e.code}: ` : '') + String(e.message ?? err).replace(/\d+/g, 'N').slice(0, 160);
    this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
  }

  stop(): void {
    this.stopped = true;
    this.measuring = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

/** One keep-alive connection slot: sends the next request as soon as the previous response is read; reconnects on close. */
class KeepAliveSlot {
  private sock: TLSSocket | null = null;
  private readonly parser = new ResponseParser(false);
  private t0 = 0;
  private inFlight = false;

  constructor(
    private readonly ep: Endpoint,
    private readonly st: LoadState,
  ) {
    this.connect();
  }

  /** Called every second: a request stuck for REQUEST_TIMEOUT_MS is an error and its connection is dropped. */
  checkTimeout(now: number): void {
    if (this.inFlight && this.sock && now - this.t0 > REQUEST_TIMEOUT_MS) {
      this.inFlight = false;
      this.st.fail(new Error(`no complete response within ${REQUEST_TIMEOUT_MS} ms`));
      this.sock.destroy();
    }
  }

  private connect(): void {
    if (this.st.stopped) return;
    this.ep.open().then(
      (s) => {
        if (this.st.stopped) {
          s.destroy();
          return;
        }
        this.sock = s;
        this.st.sockets.add(s);
        s.on('data', (chunk: Buffer) => this.onData(s, chunk));
        s.on('error', (err) => {
          if (this.inFlight) {
            this.inFlight = false;
            this.st.fail(err);
          }
        });
        s.once('close', () => {
          this.st.sockets.delete(s);
          if (this.sock === s) this.sock = null;
          if (this.inFlight) {
            this.inFlight = false;
            this.st.fail(new Error('connection closed before the response was complete'));
          } else if (!this.st.stopped && this.st.measuring) this.st.reconnects++;
          if (!this.st.stopped) setImmediate(() => this.connect());
        });
        this.send();
      },
      (err) => {
        this.st.fail(err);
        if (!this.st.stopped) setTimeout(() => this.connect(), 50);
      },
    );
  }

  private send(): void {
    if (this.st.stopped || !this.sock) return;
    this.parser.reset();
    this.inFlight = true;
    this.t0 = performance.now();
    this.sock.write(this.ep.request);
  }

  private onData(s: TLSSocket, chunk: Buffer): void {
    if (s !== this.sock) return;
    if (!this.inFlight) {
      this.st.fail(new Error('bytes arrived with no request in flight'));
      s.destroy();
      return;
    }
    let done: boolean;
    try {
      done = this.parser.feed(chunk);
    } catch (err) {
      this.inFlight = false;
      this.st.fail(err);
      s.destroy();
      return;
    }
    if (!done) return;
    this.inFlight = false;
    this.st.complete(this.parser.status, this.parser.bodyBytes, performance.now() - this.t0);
    if (this.parser.close) s.destroy();
    else this.send();
  }
}

/** One request on an open socket; resolves with the parsed response. */
function oneRequest(s: TLSSocket, request: Buffer, collect: boolean): Promise<ResponseParser> {
  return new Promise((resolve, reject) => {
    const parser = new ResponseParser(collect);
    parser.reset();
    const timer = setTimeout(() => finish(new Error(`no complete response within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', onErr);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(parser);
    };
    const onData = (chunk: Buffer) => {
      try {
        if (parser.feed(chunk)) finish(null);
      } catch (err) {
        finish(err as Error);
      }
    };
    const onErr = (err: Error) => finish(err);
    const onClose = () => finish(new Error('connection closed before the response was complete'));
    s.on('data', onData);
    s.on('error', onErr);
    s.on('close', onClose);
    s.write(request);
  });
}

const ownPids: number[] = [process.pid];
const ownSeconds = (): number | null => sumCpuSeconds(ownPids);

interface CpuMark {
  target: number | null;
  loadgen: NodeJS.CpuUsage;
  busy: number | null;
  own: number | null;
  t: number;
}

function cpuMark(pid: number | undefined): CpuMark {
  return { target: cpuSeconds(pid), loadgen: process.cpuUsage(), busy: machineBusySeconds(), own: ownSeconds(), t: performance.now() };
}

function cpuSince(m: CpuMark, pid: number | undefined, n: number) {
  const target = cpuSeconds(pid);
  const lg = process.cpuUsage(m.loadgen);
  const busy = machineBusySeconds();
  const own = ownSeconds();
  const wall = (performance.now() - m.t) / 1000;
  return {
    target_us: m.target !== null && target !== null && n > 0 ? ((target - m.target) * 1e6) / n : null,
    loadgen_us: n > 0 ? (lg.user + lg.system) / n : null,
    foreign: m.busy !== null && busy !== null && m.own !== null && own !== null ? Math.max(0, busy - m.busy - (own - m.own)) / wall : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Runs.

interface RunStats {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
  bad_body: number;
  reconnects: number;
  error_kinds: Record<string, number>;
  cpu_us_per_req: number | null;
  loadgen_cpu_us_per_req: number | null;
  foreign_cpu: number | null;
}

function pct(h: RecordableHistogram, q: number): number {
  return h.count > 0 ? h.percentile(q) / 1e6 : NaN;
}

async function keepAliveRun(ep: Endpoint, connections: number, warmupS: number, durationS: number): Promise<RunStats> {
  const st = new LoadState();
  const slots: KeepAliveSlot[] = [];
  for (let i = 0; i < connections; i++) slots.push(new KeepAliveSlot(ep, st));
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const s of slots) s.checkTimeout(now);
  }, 1000);
  try {
    await sleep(warmupS * 1000);
    st.resetCounters();
    st.measuring = true;
    const mark = cpuMark(ep.pid);
    const t0 = performance.now();
    await sleep(durationS * 1000);
    st.measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSince(mark, ep.pid, st.ok);
    return {
      rps: st.ok / seconds,
      p50_ms: pct(st.hist, 50),
      p99_ms: pct(st.hist, 99),
      errors: st.errors,
      non2xx: st.non2xx,
      bad_body: st.badBody,
      reconnects: st.reconnects,
      error_kinds: Object.fromEntries(st.errorKinds),
      cpu_us_per_req: cpu.target_us,
      loadgen_cpu_us_per_req: cpu.loadgen_us,
      foreign_cpu: cpu.foreign,
    };
  } finally {
    clearInterval(watchdog);
    st.stop();
    // Let the servers see the closes before the next target starts.
    await sleep(300);
  }
}

interface NewConnStats {
  conn_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
  bad_body: number;
  error_kinds: Record<string, number>;
  cpu_us_per_conn: number | null;
  loadgen_cpu_us_per_conn: number | null;
  foreign_cpu: number | null;
}

/** Fresh connection (CONNECT + full TLS handshake, no session resumption), one request, close; `concurrency` loops. */
async function newConnRun(ep: Endpoint, concurrency: number, durationS: number): Promise<NewConnStats> {
  const st = new LoadState();
  st.measuring = true;
  const mark = cpuMark(ep.pid);
  const t0 = performance.now();
  const worker = async () => {
    while (!st.stopped) {
      const start = performance.now();
      let s: TLSSocket | null = null;
      try {
        s = await ep.open();
        st.sockets.add(s);
        const r = await oneRequest(s, ep.requestClose, false);
        st.complete(r.status, r.bodyBytes, performance.now() - start);
      } catch (err) {
        if (!st.stopped) st.fail(err);
        await sleep(20);
      } finally {
        if (s) {
          st.sockets.delete(s);
          s.destroy();
        }
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(durationS * 1000);
  st.measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince(mark, ep.pid, st.ok);
  st.stop();
  await Promise.race([Promise.all(workers), sleep(REQUEST_TIMEOUT_MS + 1000)]);
  await sleep(300);
  return {
    conn_per_s: st.ok / seconds,
    p50_ms: pct(st.hist, 50),
    p99_ms: pct(st.hist, 99),
    errors: st.errors,
    non2xx: st.non2xx,
    bad_body: st.badBody,
    error_kinds: Object.fromEntries(st.errorKinds),
    cpu_us_per_conn: cpu.target_us,
    loadgen_cpu_us_per_conn: cpu.loadgen_us,
    foreign_cpu: cpu.foreign,
  };
}

/** One request per target before any load: HTTP 200 and the mock's exact bytes, over a verified connection. */
async function preflight(ep: Endpoint): Promise<string | null> {
  let s: TLSSocket | null = null;
  try {
    s = await ep.open();
    const r = await oneRequest(s, ep.request, true);
    const body = Buffer.concat(r.body ?? []);
    if (r.status !== 200) return `${ep.name}: preflight got HTTP ${r.status}: ${body.toString('utf8', 0, 300)}`;
    if (!body.equals(MOCK_RESPONSE)) return `${ep.name}: preflight body differs from the mock's (${body.length} vs ${MOCK_RESPONSE.length} bytes)`;
    return null;
  } catch (err) {
    const e = err as Error & { code?: string };
    return `${ep.name}: preflight failed: ${e.code ? `${e.code}: ` : ''}${e.message}`;
  } finally {
    s?.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Summaries.

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function round(x: number | null | undefined, digits: number): number | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}

function mergeKinds(list: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of list) for (const [name, n] of Object.entries(k)) out[name] = (out[name] ?? 0) + n;
  return out;
}

function summarize(runs: RunStats[]) {
  const nums = (f: (r: RunStats) => number | null) => runs.map(f).filter((x): x is number => x !== null);
  const foreign = nums((r) => r.foreign_cpu);
  return {
    rps: round(median(runs.map((r) => r.rps)), 0),
    p50_ms: round(median(runs.map((r) => r.p50_ms)), 2),
    p99_ms: round(median(runs.map((r) => r.p99_ms)), 2),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
    bad_body: runs.reduce((a, r) => a + r.bad_body, 0),
    reconnects: runs.reduce((a, r) => a + r.reconnects, 0),
    cpu_us_per_req: round(median(nums((r) => r.cpu_us_per_req)), 1),
    loadgen_cpu_us_per_req: round(median(nums((r) => r.loadgen_cpu_us_per_req)), 1),
    rps_rounds: runs.map((r) => round(r.rps, 0)),
    foreign_cpu_max: foreign.length ? round(Math.max(...foreign), 2) : null,
    error_kinds: mergeKinds(runs.map((r) => r.error_kinds)),
  };
}

function envNumber(name: string, fallback: number, allowZero = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

const ALL_TARGETS: readonly TargetName[] = ['direct_tls', 'gateway_https', 'intercept_connect', 'mitmdump'];

/** BENCH_TARGETS=a,b limits the run to those targets (e.g. for a CPU profile of one path). */
function selectedTargets(): ReadonlySet<TargetName> {
  const raw = process.env.BENCH_TARGETS;
  if (!raw) return new Set(ALL_TARGETS);
  const names = raw.split(',').map((t) => t.trim()).filter(Boolean);
  for (const n of names) if (!ALL_TARGETS.includes(n as TargetName)) throw new Error(`BENCH_TARGETS: unknown target "${n}" (${ALL_TARGETS.join(', ')})`);
  return new Set(names as TargetName[]);
}

/** `--connections N` / `--connections=N` on the command line wins over BENCH_CONNECTIONS. */
function argNumber(flag: string): number | undefined {
  const argv = process.argv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const raw = a === flag ? argv[i + 1] : a.startsWith(`${flag}=`) ? a.slice(flag.length + 1) : undefined;
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number, got ${JSON.stringify(raw)}`);
    return n;
  }
  return undefined;
}

function findMitmdump(): string | null {
  const env = process.env.BENCH_MITMDUMP;
  if (env === 'off' || env === '0') return null;
  if (env) return existsSync(env) ? env : null;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'mitmdump'))) return join(dir, 'mitmdump');
  }
  return null;
}

function mitmVersion(bin: string): string | null {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 });
    return /Mitmproxy:\s*(\S+)/.exec(out)?.[1] ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  kids.installExitHandlers();
  const duration = envNumber('BENCH_DURATION', 10);
  const rounds = Math.round(envNumber('BENCH_ROUNDS', 3));
  const connections = Math.round(argNumber('--connections') ?? envNumber('BENCH_CONNECTIONS', 32));
  const warmup = envNumber('BENCH_WARMUP', 2);
  const ncDuration = envNumber('BENCH_NEWCONN_DURATION', 5, true);
  const selected = selectedTargets();
  const ncConcurrency = Math.round(envNumber('BENCH_NEWCONN_CONCURRENCY', 8));
  const notes: string[] = [];

  const tempDir = (kids.tempDir = mkdtempSync(join(tmpdir(), 'sluice-bench-mitm-')));
  const pki = makePki(join(tempDir, 'pki'));
  const benchCa = readFileSync(pki.caCert, 'utf8');

  const mock = await forkRole('mock', [pki.mockCert, pki.mockKey]);
  const mockPort = mock.msg.port;
  const mockOrigin = `https://127.0.0.1:${mockPort}`;
  log(`mock provider on ${mockOrigin}`);
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const sluice = await forkRole(
    'sluice',
    [mockOrigin, join(tempDir, 'sluice-data'), pki.caCert, pki.gwCert, pki.gwKey],
    20_000,
    profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  );
  const gwPort = sluice.msg.port;
  const fwdPort = sluice.msg.forward!;
  const sluiceCa = readFileSync(sluice.msg.caCert!, 'utf8');
  ownPids.push(mock.child.pid!, sluice.child.pid!);
  log(`sluice gateway on https://127.0.0.1:${gwPort}, forward proxy on 127.0.0.1:${fwdPort}, CA ${sluice.msg.caCert}`);

  // One client context per trust anchor, built once: a `ca` option on every connect would build a fresh
  // context (and certificate store) per connection and make the load generator the bottleneck of the
  // new-connection rate. Each connection still makes a full handshake (no session is offered back).
  const tlsBase: ConnectionOptions = { rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] };
  const benchCtx = createSecureContext({ ca: benchCa });
  const sluiceCtx = createSecureContext({ ca: sluiceCa });
  const endpoints: Endpoint[] = [
    {
      name: 'direct_tls',
      pid: mock.child.pid,
      open: () => tlsDirect(mockPort, { ...tlsBase, secureContext: benchCtx }),
      request: buildRequest(CHAT_PATH, `127.0.0.1:${mockPort}`, false),
      requestClose: buildRequest(CHAT_PATH, `127.0.0.1:${mockPort}`, true),
    },
    {
      name: 'gateway_https',
      pid: sluice.child.pid,
      open: () => tlsDirect(gwPort, { ...tlsBase, secureContext: benchCtx }),
      request: buildRequest(`/openai${CHAT_PATH}`, `127.0.0.1:${gwPort}`, false),
      requestClose: buildRequest(`/openai${CHAT_PATH}`, `127.0.0.1:${gwPort}`, true),
    },
    {
      name: 'intercept_connect',
      pid: sluice.child.pid,
      open: () => tlsViaConnect(fwdPort, `${PROVIDER_HOST}:443`, { ...tlsBase, secureContext: sluiceCtx, servername: PROVIDER_HOST }),
      request: buildRequest(CHAT_PATH, PROVIDER_HOST, false),
      requestClose: buildRequest(CHAT_PATH, PROVIDER_HOST, true),
    },
  ];

  let mitm: { version: string | null; bin: string; args: string } | null = null;
  const mitmBin = selected.has('mitmdump') ? findMitmdump() : null;
  if (!selected.has('mitmdump')) {
    notes.push('mitmdump not measured: not in BENCH_TARGETS');
  } else if (!mitmBin) {
    notes.push('mitmdump baseline skipped: no mitmdump on PATH (Debian: apt-get install mitmproxy), or BENCH_MITMDUMP=off');
  } else {
    try {
      const confdir = join(tempDir, 'mitmproxy');
      mkdirSync(confdir, { recursive: true });
      const m = await forkRole('mitmdump', [mitmBin, confdir, pki.caCert], 40_000);
      const mitmPort = m.msg.port;
      const mitmCtx = createSecureContext({ ca: readFileSync(m.msg.caCert!, 'utf8') });
      ownPids.push(m.child.pid!, m.msg.pid!);
      mitm = {
        version: mitmVersion(mitmBin),
        bin: mitmBin,
        args: `--listen-host 127.0.0.1 --listen-port ${mitmPort} --set confdir=TMP --set ssl_verify_upstream_trusted_ca=benchCA.pem -q`,
      };
      log(`mitmdump ${mitm.version ?? '?'} on 127.0.0.1:${mitmPort} (pid ${m.msg.pid})`);
      // mitmproxy dials the CONNECT target itself and has no `upstreams` map, so the tunnel names the mock's
      // address; without SNI (an IP) it mints a leaf for 127.0.0.1, which the client verifies against the IP.
      const authority = `127.0.0.1:${mockPort}`;
      endpoints.push({
        name: 'mitmdump',
        pid: m.msg.pid,
        open: () => tlsViaConnect(mitmPort, authority, { ...tlsBase, secureContext: mitmCtx, host: '127.0.0.1' }),
        request: buildRequest(CHAT_PATH, authority, false),
        requestClose: buildRequest(CHAT_PATH, authority, true),
      });
    } catch (err) {
      notes.push(`mitmdump baseline skipped: ${(err as Error).message}`);
    }
  }

  const usable: Endpoint[] = [];
  for (const ep of endpoints.filter((e) => selected.has(e.name))) {
    const problem = await preflight(ep);
    if (problem) {
      notes.push(problem);
      log(problem);
      // Measured anyway: a target that fails must show its errors, not vanish from the table.
    }
    usable.push(ep);
  }
  const statsAfterPreflight = await askStats(sluice.child);

  const results = new Map<TargetName, RunStats[]>(usable.map((e) => [e.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = usable.map((_, i) => usable[(i + r) % usable.length]!);
    for (const ep of order) {
      log(`round ${r + 1}/${rounds} ${ep.name}: ${connections} keep-alive connections, warm-up ${warmup}s, measuring ${duration}s`);
      const s = await keepAliveRun(ep, connections, warmup, duration);
      log(
        `round ${r + 1}/${rounds} ${ep.name}: ${s.rps.toFixed(0)} req/s p50 ${s.p50_ms.toFixed(2)} ms p99 ${s.p99_ms.toFixed(2)} ms` +
          ` errors ${s.errors} non2xx ${s.non2xx} bad_body ${s.bad_body} reconnects ${s.reconnects}` +
          `${s.cpu_us_per_req !== null ? ` cpu ${s.cpu_us_per_req.toFixed(1)} µs/req` : ''}` +
          `${s.loadgen_cpu_us_per_req !== null ? ` loadgen ${s.loadgen_cpu_us_per_req.toFixed(1)} µs/req` : ''}` +
          `${s.foreign_cpu !== null ? ` foreign ${s.foreign_cpu.toFixed(2)} cores` : ''}` +
          `${s.errors ? ` ${JSON.stringify(s.error_kinds)}` : ''}`,
      );
      results.get(ep.name)!.push(s);
    }
  }

  const newConn: Partial<Record<TargetName, ReturnType<typeof summarizeNc>>> = {};
  let leafDelta: { mints: number; hits: number; handshakes: number } | null = null;
  for (const ep of ncDuration > 0 ? usable : []) {
    log(`new connections ${ep.name}: concurrency ${ncConcurrency}, ${ncDuration}s`);
    const before = ep.name === 'intercept_connect' ? await askStats(sluice.child) : null;
    const s = await newConnRun(ep, ncConcurrency, ncDuration);
    if (before) {
      const after = await askStats(sluice.child);
      leafDelta = {
        mints: after.leaves.mints - before.leaves.mints,
        hits: after.leaves.hits - before.leaves.hits,
        handshakes: after.handshakes - before.handshakes,
      };
    }
    log(
      `new connections ${ep.name}: ${s.conn_per_s.toFixed(0)} conn/s p50 ${s.p50_ms.toFixed(2)} ms p99 ${s.p99_ms.toFixed(2)} ms errors ${s.errors}` +
        `${s.cpu_us_per_conn !== null ? ` cpu ${s.cpu_us_per_conn.toFixed(0)} µs/conn` : ''}` +
        `${leafDelta && ep.name === 'intercept_connect' ? ` leaves +${leafDelta.mints} mints +${leafDelta.hits} hits, +${leafDelta.handshakes} handshakes` : ''}` +
        `${s.errors ? ` ${JSON.stringify(s.error_kinds)}` : ''}`,
    );
    newConn[ep.name] = summarizeNc(s);
  }
  const finalStats = await askStats(sluice.child);

  const keepAlive: Partial<Record<TargetName, ReturnType<typeof summarize>>> = {};
  for (const [name, runs] of results) {
    const s = summarize(runs);
    keepAlive[name] = s;
    if (s.errors || s.non2xx || s.bad_body) notes.push(`${name}: ${s.errors} errors, ${s.non2xx} non-2xx, ${s.bad_body} wrong-length bodies over all rounds`);
    if (s.reconnects) notes.push(`${name}: the server closed ${s.reconnects} keep-alive connections between requests`);
    const rr = s.rps_rounds.filter((x): x is number => x !== null && x > 0);
    if (rr.length > 1 && Math.max(...rr) / Math.min(...rr) > 1.3) notes.push(`${name}: req/s varied ${Math.min(...rr)}-${Math.max(...rr)} across rounds`);
    if (s.foreign_cpu_max !== null && s.foreign_cpu_max > 0.15) notes.push(`${name}: other processes or hypervisor steal took up to ${s.foreign_cpu_max} cores during a run`);
  }
  for (const [name, s] of Object.entries(newConn)) {
    if (s && (s.errors || s.non2xx || s.bad_body)) notes.push(`new connections ${name}: ${s.errors} errors, ${s.non2xx} non-2xx, ${s.bad_body} wrong-length bodies`);
  }
  if (finalStats.handshake_failures.length) notes.push(`sluice recorded handshake failures: ${JSON.stringify(finalStats.handshake_failures.map((f) => ({ reason: f.reason, count: f.count, message: f.message })))}`);

  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? round(a / b, 3) : null);
  const ic = keepAlive.intercept_connect;
  const gw = keepAlive.gateway_https;
  const dt = keepAlive.direct_tls;
  const md = keepAlive.mitmdump;
  const rIg = ratio(ic?.rps, gw?.rps);
  const rIm = md ? ratio(ic?.rps, md.rps) : null;
  const cpu0 = cpus()[0];
  const out = {
    bench: 'mitm',
    node: process.version,
    openssl: process.versions.openssl,
    cpu_model: cpu0?.model ?? null,
    cpus: cpus().length,
    mitmdump: mitm ? { version: mitm.version, args: mitm.args } : null,
    duration_s: duration,
    rounds,
    warmup_s: warmup,
    connections,
    detect_enabled: false,
    mock_san: MOCK_SAN,
    keepalive: {
      direct_tls: dt ?? null,
      gateway_https: gw ?? null,
      intercept_connect: ic ?? null,
      mitmdump: md ?? null,
    },
    new_connections: {
      concurrency: ncConcurrency,
      duration_s: ncDuration,
      direct_tls: newConn.direct_tls ?? null,
      gateway_https: newConn.gateway_https ?? null,
      intercept_connect: newConn.intercept_connect ? { ...newConn.intercept_connect, leaf_mints: leafDelta?.mints ?? null, leaf_hits: leafDelta?.hits ?? null, sluice_handshakes: leafDelta?.handshakes ?? null } : null,
      mitmdump: newConn.mitmdump ?? null,
    },
    sluice_interception: {
      leaves_after_preflight: statsAfterPreflight.leaves,
      leaves_at_end: finalStats.leaves,
      handshakes: finalStats.handshakes,
      handshake_failures: finalStats.handshake_failures.reduce((a, f) => a + f.count, 0),
      tunnelled: finalStats.tunnelled,
    },
    ratio_intercept_vs_gateway: rIg,
    target_intercept_vs_gateway: 0.6,
    met_intercept_vs_gateway: rIg !== null ? rIg >= 0.6 : null,
    ratio_intercept_vs_mitmdump: rIm,
    target_intercept_vs_mitmdump: 10,
    met_intercept_vs_mitmdump: rIm !== null ? rIm >= 10 : null,
    ratio_gateway_vs_direct: ratio(gw?.rps, dt?.rps),
    ratio_intercept_vs_direct: ratio(ic?.rps, dt?.rps),
    ratio_newconn_intercept_vs_mitmdump: ratio(newConn.intercept_connect?.conn_per_s, newConn.mitmdump?.conn_per_s),
    notes,
  };
  await kids.stopAll(3000);
  await new Promise<void>((resolve) => process.stdout.write(JSON.stringify(out) + '\n', () => resolve()));
}

function summarizeNc(s: NewConnStats) {
  return {
    conn_per_s: round(s.conn_per_s, 0),
    p50_ms: round(s.p50_ms, 2),
    p99_ms: round(s.p99_ms, 2),
    errors: s.errors,
    non2xx: s.non2xx,
    bad_body: s.bad_body,
    cpu_us_per_conn: round(s.cpu_us_per_conn, 0),
    loadgen_cpu_us_per_conn: round(s.loadgen_cpu_us_per_conn, 0),
    foreign_cpu: round(s.foreign_cpu, 2),
    error_kinds: s.error_kinds,
  };
}

// ---------------------------------------------------------------------------------------------

const roleAt = process.argv.indexOf('--role');
if (roleAt >= 0) {
  const role = process.argv[roleAt + 1];
  const rest = process.argv.slice(roleAt + 2);
  const fail = (err: Error) => {
    send({ type: 'error', message: err.stack ?? err.message });
    process.exit(1);
  };
  if (role === 'mock') runMock(rest[0]!, rest[1]!);
  else if (role === 'sluice') runSluice(rest[0]!, rest[1]!, rest[2]!, rest[3]!, rest[4]!).catch(fail);
  else if (role === 'mitmdump') runMitmGuard(rest[0]!, rest[1]!, rest[2]!).catch(fail);
  else {
    process.stderr.write(`unknown role ${role}\n`);
    process.exit(2);
  }
} else {
  kids.runMain(main);
}
