// Admin listener: health and readiness for orchestrators, /metrics, /signals, /stats, reload, and the dashboard page.
// Kept on node:http, apart from the data path, so a saturated proxy port never hides health.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, extname, join } from 'node:path';
import type { Config, ListenAddress } from '../config/schema';
import { readSecretFile } from '../config/secret';
import { ErrorCodes, SluiceError } from '../errors';
import { listenOn } from '../http/listen';
import { SIGNALS_WINDOWS } from '../signals/stage';
import type { SignalsSnapshot, SignalsWindow } from '../signals/types';

export interface AdminState {
  /** True while the proxy accepts new exchanges. */
  ready(): boolean;
  inFlight(): number;
  /** Counters for operators (interception, detection, audit, alerts). */
  stats(): unknown;
  /** Reloads policy and rule packs; rejects with a SluiceError naming what is wrong. */
  reload(): Promise<unknown>;
  /** Prometheus text exposition. */
  metrics(): Promise<{ contentType: string; body: string }>;
  signals(window: SignalsWindow): SignalsSnapshot;
}

export interface AdminOptions {
  /** admin.token_file's token: when set, every path but health, readiness and the page's static files needs it. */
  token: string | null;
}

const ENDPOINTS = ['/healthz', '/readyz', '/metrics', '/signals?window=1m|5m|1h|all', '/stats', 'POST /admin/reload', '/ (dashboard)'];

/**
 * The dashboard's files are served from the source tree (`src/admin/dashboard`, shipped in the package), resolved
 * from this file compiled to `dist/src/admin/`; uPlot comes from its package.
 */
const DASHBOARD_DIR = join(__dirname, '..', '..', '..', 'src', 'admin', 'dashboard');
const UPLOT_DIST = join(dirname(require.resolve('uplot/package.json')), 'dist');
const STATIC = new Map([
  ['/', join(DASHBOARD_DIR, 'index.html')],
  ['/dashboard/uplot.min.js', join(UPLOT_DIST, 'uPlot.iife.min.js')],
  ['/dashboard/uplot.min.css', join(UPLOT_DIST, 'uPlot.min.css')],
]);
const ASSET = /^\/dashboard\/([a-z0-9][a-z0-9._-]*)$/i;
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
/** The page holds a token: no script but its own, no framing, no referrer. */
const PAGE_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: only this machine can reach them. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  return isIPv6(h) && h.startsWith('::ffff:127.');
}

/**
 * admin.token_file's token, or null for no authentication. Beyond loopback a token is required: /metrics and
 * /signals name callers and destinations, and reload changes policy.
 */
export async function loadAdminToken(config: Config): Promise<string | null> {
  const file = config.admin.token_file;
  if (file !== null) return readSecretFile(file, 'admin.token_file');
  const { host, port } = config.listen.admin;
  if (!isLoopback(host)) {
    throw new SluiceError(
      'SLUICE_CONFIG_INVALID',
      `listen.admin ${host}:${port} is reachable beyond this machine, so admin.token_file is required: set it to a file holding a bearer token, or bind listen.admin to 127.0.0.1`,
    );
  }
  return null;
}

export class AdminServer {
  private readonly server: Server;
  private readonly state: AdminState;
  /** SHA-256 of the token: compared in constant time, whatever length is presented. */
  private readonly tokenHash: Buffer | null;

  constructor(state: AdminState, opts: AdminOptions = { token: null }) {
    this.state = state;
    this.tokenHash = opts.token === null ? null : sha256(opts.token);
    this.server = createServer((req, res) => this.handle(req, res));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const open = path === '/healthz' || path === '/readyz' || STATIC.has(path) || ASSET.test(path);
    if (!open && !this.authorized(req)) {
      req.resume();
      json(res, 401, { error: ErrorCodes.SLUICE_ADMIN_AUTH.hint, code: 'SLUICE_ADMIN_AUTH' }, { 'www-authenticate': 'Bearer realm="sluice-admin"' });
      return;
    }
    if (path === '/admin/reload') return this.reload(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' }).end('{"error":"method not allowed"}');
      return;
    }
    switch (path) {
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz': {
        const ready = this.state.ready();
        return json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'draining', in_flight: this.state.inFlight() });
      }
      case '/stats':
        return json(res, 200, this.state.stats());
      case '/metrics':
        this.state.metrics().then(
          (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
          (err: Error) => json(res, 500, { error: `metrics could not be collected: ${err.message}`, code: 'SLUICE_INTERNAL' }),
        );
        return;
      case '/signals': {
        const w = new URLSearchParams(q < 0 ? '' : url.slice(q + 1)).get('window') ?? '5m';
        if (!(SIGNALS_WINDOWS as readonly string[]).includes(w)) return json(res, 400, { error: `window must be one of ${SIGNALS_WINDOWS.join(', ')}`, code: 'SLUICE_BAD_REQUEST' });
        return json(res, 200, this.state.signals(w as SignalsWindow), { 'cache-control': 'no-store' });
      }
    }
    const file = STATIC.get(path) ?? (ASSET.test(path) ? join(DASHBOARD_DIR, ASSET.exec(path)![1]!) : undefined);
    if (file !== undefined) return this.serveFile(file, res);
    json(res, 404, { error: 'not found', endpoints: ENDPOINTS });
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.tokenHash === null) return true;
    const h = req.headers.authorization;
    if (h === undefined || !/^bearer /i.test(h)) return false;
    return timingSafeEqual(sha256(h.slice(7).trim()), this.tokenHash);
  }

  private reload(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'application/json', allow: 'POST' }).end('{"error":"POST to reload"}');
      return;
    }
    req.resume();
    this.state.reload().then(
      (r) => json(res, 200, { status: 'reloaded', ...(r as object) }),
      (err: Error & { code?: string }) =>
        json(res, 400, { status: 'refused', code: err.code ?? 'SLUICE_INTERNAL', error: err.message, note: 'the running version stays' }),
    );
  }

  private serveFile(file: string, res: ServerResponse): void {
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', ...PAGE_HEADERS }).end(body),
      (err: NodeJS.ErrnoException) =>
        err.code === 'ENOENT' || err.code === 'EISDIR'
          ? json(res, 404, { error: 'not found', endpoints: ENDPOINTS })
          : json(res, 500, { error: `dashboard file unreadable: ${err.message}`, code: 'SLUICE_INTERNAL' }),
    );
  }

  listen(addr: ListenAddress): Promise<number> {
    return listenOn(this.server, addr, 'admin');
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}
