// Transparent TLS front door (`listen.transparent`): DNS or a redirect sends api.openai.com:443 here.
// The certificate is chosen by SNI; no SNI, or a host that is not intercepted, is refused and recorded.

import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ListenAddress } from '../config/schema';
import { listenOn } from '../http/listen';
import type { InterceptionPolicy } from '../destinations/interception';
import type { DestinationRegistry } from '../destinations/registry';
import type { Relay } from '../pipeline/relay';
import type { TlsTerminator } from '../tls/terminate';
import { recordConnection, type InterceptedHttp } from './intercepted';

export interface TransparentOptions {
  registry: DestinationRegistry;
  relay: Relay;
  policy: InterceptionPolicy;
  terminator: TlsTerminator;
  intercepted: InterceptedHttp;
}

export class TransparentDoor {
  private readonly server: Server;
  private readonly opts: TransparentOptions;
  private readonly handshaking = new Set<Socket>();

  constructor(opts: TransparentOptions) {
    this.opts = opts;
    this.server = createServer((s) => void this.handle(s));
  }

  listen(addr: ListenAddress): Promise<number> {
    return listenOn(this.server, addr, 'transparent listener');
  }

  stopAccepting(): void {
    this.server.close();
  }

  close(): void {
    this.stopAccepting();
    for (const s of this.handshaking) s.destroy();
  }

  private async handle(socket: Socket): Promise<void> {
    const t0 = performance.now();
    const clientAddress = socket.remoteAddress ?? '';
    socket.on('error', () => undefined);
    this.handshaking.add(socket);
    const { policy, terminator, registry, relay } = this.opts;
    const r = await terminator.terminate(socket, {
      host: null,
      acceptSni: (name) => {
        const d = policy.decide(name, 443);
        if (d.action === 'intercept') return true;
        // Transparent mode cannot tunnel: the bytes already arrived at Sluice as TLS meant for the host.
        return `${name} is not intercepted here (${d.reason})`;
      },
    });
    this.handshaking.delete(socket);
    const host = r.servername;
    const destination = registry.byHost(host || 'no-sni.invalid');
    const base = { frontDoor: 'transparent' as const, destination, clientAddress, identity: null };
    if (!r.ok) {
      terminator.recordFailure(host || '(no SNI)', clientAddress, r.reason, r.message);
      const outcome = r.reason === 'no_sni' || r.reason === 'refused_sni' ? 'denied' : 'client_tls_failed';
      const code = outcome === 'denied' ? 'SLUICE_CONNECT_DENIED' : 'SLUICE_CLIENT_TLS';
      recordConnection(relay, base, outcome, { code, message: `${r.reason}: ${r.message}` }, t0);
      return;
    }
    this.opts.intercepted.accept(r.socket, { ...base, host, port: null });
  }
}
