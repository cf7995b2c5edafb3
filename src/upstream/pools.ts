// Upstream connections: one keep-alive undici Pool per origin, created on first use.
// Timeouts come from limits.upstream_timeout_ms; TLS verifies against the trust built in trust.ts.

import { isIP } from 'node:net';
import type { SecureContext } from 'node:tls';
import { Pool, buildConnector, type Dispatcher } from 'undici';

export interface UpstreamOptions {
  connectionsPerOrigin: number;
  timeoutMs: number;
  /** Roots upstream certificates are verified against (trust.ts); Node's defaults when absent. */
  trust?: SecureContext;
}

export class Upstreams {
  private readonly pools = new Map<string, Pool>();
  /** TLS server name per origin: the host dialled, not the Host header (which names the provider). */
  private readonly servernames = new Map<string, string | undefined>();
  private readonly opts: UpstreamOptions;

  constructor(opts: UpstreamOptions) {
    this.opts = opts;
  }

  /** Sends a request with a raw undici handler (no stream objects on the hot path). */
  dispatch(origin: string, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    let pool = this.pools.get(origin);
    if (!pool) {
      const host = new URL(origin).hostname;
      const ip = isIP(host.replace(/^\[|\]$/g, '')) !== 0;
      const connect = {
        timeout: Math.min(this.opts.timeoutMs, 30_000),
        ...(this.opts.trust ? { secureContext: this.opts.trust } : {}),
      };
      pool = new Pool(origin, {
        connections: this.opts.connectionsPerOrigin,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
        connect: ip ? verifyAgainstAddress(connect) : connect,
      });
      this.pools.set(origin, pool);
      // For an IP the name only keeps undici from deriving one from Host on every request; the connector drops it.
      this.servernames.set(origin, host);
    }
    // Without it undici takes SNI from the Host header, which is wrong behind an `upstreams`
    // override that points at an HTTPS relay, and costs an IP-literal regex on every request.
    const servername = this.servernames.get(origin);
    if (servername) (options as Dispatcher.DispatchOptions & { servername?: string }).servername = servername;
    pool.dispatch(options, handler);
  }

  /** Closes idle connections and waits for in-flight requests (callers drain first). */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

/**
 * An origin that is an IP literal is verified against that address, as one named by host is verified against
 * its name. undici would otherwise take the server name from the Host header (the provider) for both SNI and
 * the certificate check; `null` sends no SNI and makes Node check the certificate's IP SANs.
 */
function verifyAgainstAddress(options: buildConnector.BuildOptions): buildConnector.connector {
  const connector = buildConnector(options);
  return (o, cb) => connector({ ...o, servername: null as unknown as undefined }, cb);
}
