// CONNECT on the forward proxy (HTTPS_PROXY): each target is intercepted (TLS terminated with a minted
// leaf, requests decrypted into the shared pipeline), tunnelled blind, or denied, and every outcome is recorded.

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { InterceptionPolicy } from '../destinations/interception';
import type { DestinationRegistry } from '../destinations/registry';
import { ErrorCodes, describeUpstreamError, upstreamErrorCode, type ErrorCode } from '../errors';
import { certificateIdentity } from '../identity/mtls';
import type { Relay } from '../pipeline/relay';
import type { TlsTerminator } from '../tls/terminate';
import { recordConnection, type InterceptedConnection, type InterceptedHttp } from './intercepted';
import { PROXY_AUTH_CHALLENGE, type ProxyAuth } from './proxy-auth';

export interface ConnectOptions {
  registry: DestinationRegistry;
  relay: Relay;
  policy: InterceptionPolicy;
  terminator: TlsTerminator;
  intercepted: InterceptedHttp;
  auth: ProxyAuth;
  /** Ports this Sluice listens on, known once bound: a CONNECT back to one of them is a loop. */
  selfPorts(): readonly number[];
  /** Addresses Sluice is bound to, besides the loopback names. */
  selfHosts: readonly string[];
  connectTimeoutMs: number;
}

/** Who asked for which destination: what every record of this CONNECT carries. */
type ConnectionBase = Omit<InterceptedConnection, 'host' | 'port'>;

/** `host:port`, `[v6]:port`: RFC 9110 §9.3.6 authority-form. */
const AUTHORITY = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_](?:[a-z0-9_.-]{0,252}))):(\d{1,5})$/i;
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1', '0.0.0.0', '::', 'localhost.localdomain'];


export class ConnectDoor {
  private readonly opts: ConnectOptions;
  private readonly selfHosts: ReadonlySet<string>;
  private readonly tunnels = new Set<Socket>();
  private draining = false;
  private tunnelled = 0;

  constructor(opts: ConnectOptions) {
    this.opts = opts;
    this.selfHosts = new Set([...LOOPBACK_NAMES, hostname().toLowerCase(), ...opts.selfHosts.map((h) => h.toLowerCase())]);
  }

  /** node:http `connect` event: the request line was CONNECT; `head` is whatever followed the header block. */
  handle(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const t0 = performance.now();
    const clientAddress = socket.remoteAddress ?? '';
    socket.on('error', () => undefined);
    const target = req.url ?? '';
    const m = AUTHORITY.exec(target);
    const host = (m?.[1] ?? m?.[2] ?? '').toLowerCase();
    const port = m ? Number(m[3]) : 0;
    const destination = this.opts.registry.byHost(m ? target.toLowerCase() : 'invalid.invalid');
    const base: ConnectionBase = { frontDoor: 'connect', destination, clientAddress, identity: null };
    const refuse = (status: number, code: ErrorCode, message: string, extra: readonly string[] = []) => {
      writeRefusal(socket, status, code, message, extra);
      recordConnection(this.opts.relay, base, 'denied', { code, message }, t0);
    };

    if (this.draining) return refuse(503, 'SLUICE_SHUTTING_DOWN', 'Sluice is shutting down and takes no new connections');
    if (!m || port === 0 || port > 65535) {
      return refuse(400, 'SLUICE_BAD_REQUEST', `CONNECT needs a host:port target (RFC 9110 §9.3.6), got "${printable(target)}"`);
    }
    const auth = this.opts.auth.check(req.headers['proxy-authorization']);
    if (!auth.ok) return refuse(407, 'SLUICE_PROXY_AUTH', auth.message, PROXY_AUTH_CHALLENGE);
    // A verified client certificate outranks Proxy-Authorization (identity order of trust, docs/policy.md).
    const cert = certificateIdentity(socket as TLSSocket);
    base.identity = cert.identity ?? auth.identity;
    base.identityProblem = cert.problem;
    if (this.isSelf(host, port)) {
      return refuse(403, 'SLUICE_CONNECT_LOOP', `CONNECT ${host}:${port} points back at this proxy; that would loop`);
    }
    const decision = this.opts.policy.decide(host, port);
    if (decision.action === 'deny') return refuse(403, 'SLUICE_CONNECT_DENIED', `CONNECT to ${host}:${port} is denied: ${decision.reason}`);
    if (decision.action === 'tunnel') return this.tunnel(socket, head, host, port, base, t0);
    socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    void this.intercept(socket, head, host, port, base, t0);
  }

  stopAccepting(): void {
    this.draining = true;
  }

  close(): void {
    this.draining = true;
    for (const s of this.tunnels) s.destroy();
  }

  stats(): { tunnels_open: number; tunnelled: number } {
    return { tunnels_open: this.tunnels.size / 2, tunnelled: this.tunnelled };
  }

  private async intercept(
    socket: Socket,
    head: Buffer,
    host: string,
    port: number,
    base: ConnectionBase,
    t0: number,
  ): Promise<void> {
    const terminator = this.opts.terminator;
    const r = await terminator.terminate(socket, { host, head });
    if (!r.ok) {
      terminator.recordFailure(host, base.clientAddress, r.reason, r.message);
      recordConnection(this.opts.relay, base, 'client_tls_failed', { code: 'SLUICE_CLIENT_TLS', message: `${r.reason}: ${r.message}` }, t0);
      return;
    }
    this.opts.intercepted.accept(r.socket, { ...base, host, port });
  }

  /** Blind pass-through: Sluice sees the destination and byte counts, never the content. */
  private tunnel(
    client: Socket,
    head: Buffer,
    host: string,
    port: number,
    base: ConnectionBase,
    t0: number,
  ): void {
    // `upstreams` overrides apply to tunnels too: they map a host to where it is really reached.
    const dial = new URL(base.destination.origin);
    const dialHost = dial.hostname.replace(/^\[|\]$/g, '');
    const dialPort = Number(dial.port) || (dial.protocol === 'http:' ? 80 : 443);
    if (this.isSelf(dialHost, dialPort)) {
      writeRefusal(client, 403, 'SLUICE_CONNECT_LOOP', `CONNECT ${host}:${port} is mapped to this proxy (${dialHost}:${dialPort}); that would loop`);
      recordConnection(this.opts.relay, base, 'denied', { code: 'SLUICE_CONNECT_LOOP', message: `mapped to this proxy at ${dialHost}:${dialPort}` }, t0);
      return;
    }
    const upstream = netConnect({ host: dialHost, port: dialPort });
    let established = false;
    let clientGone = false;
    let done = false;
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' })), this.opts.connectTimeoutMs);
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.tunnels.delete(client);
      this.tunnels.delete(upstream);
      if (!established && clientGone) {
        upstream.destroy();
        recordConnection(this.opts.relay, base, 'client_aborted', { code: 'SLUICE_CLIENT_ABORTED', message: `client left before ${host}:${port} answered` }, t0);
        return;
      }
      if (!established) {
        const code = upstreamErrorCode(err);
        const message = describeUpstreamError(err, `${host}:${port}`);
        writeRefusal(client, ErrorCodes[code].status, code, message);
        recordConnection(this.opts.relay, base, 'upstream_error', { code, message }, t0);
        upstream.destroy();
        return;
      }
      client.destroy();
      upstream.destroy();
      recordConnection(this.opts.relay, base, 'tunnelled', null, t0, { up: upstream.bytesWritten, down: upstream.bytesRead });
    };
    this.tunnels.add(client);
    this.tunnels.add(upstream);
    upstream.once('connect', () => {
      clearTimeout(timer);
      established = true;
      this.tunnelled++;
      upstream.setNoDelay(true);
      client.setNoDelay(true);
      if (head.length) upstream.write(head);
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', (err) => finish(err));
    upstream.on('close', () => finish(null));
    client.on('close', () => {
      clientGone = true;
      finish(null);
    });
  }

  private isSelf(host: string, port: number): boolean {
    const local = this.selfHosts.has(host) || (isIP(host) === 4 && host.startsWith('127.'));
    return local && this.opts.selfPorts().includes(port);
  }
}

function writeRefusal(socket: Socket, status: number, code: ErrorCode, message: string, extra: readonly string[] = []): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, type: 'sluice_error', message } });
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\nx-sluice-error: ${code}\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  socket.end(`${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** A client-supplied string made safe to echo in a message. */
function printable(s: string): string {
  const t = s.slice(0, 100).replace(/[^\x20-\x7e]/g, '?');
  return s.length > 100 ? `${t}…` : t;
}
