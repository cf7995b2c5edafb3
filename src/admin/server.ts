// Admin listener: liveness and readiness for orchestrators; metrics and signals join it later.
// Kept on node:http, apart from the data path, so a saturated proxy port never hides health.

import { createServer, type Server } from 'node:http';
import type { ListenAddress } from '../config/schema';
import { listenOn } from '../http/listen';

export interface AdminState {
  /** True while the proxy accepts new exchanges. */
  ready(): boolean;
  inFlight(): number;
  /** Counters for operators (interception, detection) until /metrics lands. */
  stats(): unknown;
  /** Reloads policy and rule packs; rejects with a SluiceError naming what is wrong. */
  reload(): Promise<unknown>;
}

export class AdminServer {
  private readonly server: Server;

  constructor(state: AdminState) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/admin/reload') {
        if (req.method !== 'POST') {
          res.writeHead(405, { 'content-type': 'application/json', allow: 'POST' }).end('{"error":"POST to reload"}');
          return;
        }
        req.resume();
        state.reload().then(
          (r) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'reloaded', ...(r as object) })),
          (err: Error & { code?: string }) =>
            res
              .writeHead(400, { 'content-type': 'application/json' })
              .end(JSON.stringify({ status: 'refused', code: err.code ?? 'SLUICE_INTERNAL', error: err.message, note: 'the running version stays' })),
        );
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' }).end('{"error":"method not allowed"}');
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      } else if (path === '/readyz') {
        const ready = state.ready();
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: ready ? 'ready' : 'draining', in_flight: state.inFlight() }));
      } else if (path === '/stats') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state.stats()));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found","endpoints":["/healthz","/readyz","/stats","POST /admin/reload"]}');
      }
    });
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
