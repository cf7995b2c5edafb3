// Assembles one running Sluice from a Config: registry, pipeline, relay, front doors, admin.
// The CLI and the tests both start Sluice through here.

import { join } from 'node:path';
import type { Config } from './config/schema';
import { DestinationRegistry } from './destinations/registry';
import { AdminServer } from './admin/server';
import { ForwardProxy } from './frontdoor/forward';
import { Gateway } from './frontdoor/gateway';
import { AdapterStage } from './pipeline/adapt';
import { Pipeline, type Stage } from './pipeline/pipeline';
import { Relay } from './pipeline/relay';
import { Upstreams } from './upstream/pools';
import { loadFindingKey } from './detect/findings';
import { BUILTIN_RULES_DIR } from './detect/rules';
import { Inspector } from './detect/pool';

export interface SluiceOptions {
  config: Config;
  /** Stages after the built-in adapter stage (inspection, policy, audit, signals). */
  stages?: Stage[];
}

export interface RunningSluice {
  readonly config: Config;
  readonly registry: DestinationRegistry;
  readonly relay: Relay;
  /** The detection engine, unless `detect.enabled` is false. */
  readonly inspector: Inspector | undefined;
  /** Bound ports (useful when the config asked for port 0). */
  readonly ports: { proxy: number; forward: number; admin: number };
  readonly gatewayUrl: string;
  readonly forwardUrl: string;
  readonly adminUrl: string;
  /** Stops accepting, lets in-flight exchanges finish up to `graceMs`, then closes everything. */
  stop(graceMs?: number): Promise<void>;
}

export async function startSluice(opts: SluiceOptions): Promise<RunningSluice> {
  const { config } = opts;
  // Rules load and compile before any port opens: a bad pack stops the start instead of serving uninspected.
  const inspector = config.detect.enabled
    ? await Inspector.start({
        rulesDirs: [BUILTIN_RULES_DIR, ...config.detect.rules],
        threads: config.detect.threads,
        timeoutMs: config.detect.timeout_ms,
        inlineMaxChars: config.detect.inline_max_chars,
        maxQueue: config.detect.max_queue,
        digestKey: await loadFindingKey(config.data_dir),
        cacheDir: join(config.data_dir, 'cache'),
      })
    : undefined;
  const registry = new DestinationRegistry(config);
  const pipeline = new Pipeline([new AdapterStage(config.limits.max_inspect_bytes), ...(opts.stages ?? [])]);
  const upstreams = new Upstreams({
    connectionsPerOrigin: config.limits.connections_per_origin,
    timeoutMs: config.limits.upstream_timeout_ms,
  });
  const relay = new Relay(pipeline, upstreams, { maxInspectBytes: config.limits.max_inspect_bytes });
  const doorOpts = { registry, relay, maxRequestBytes: config.limits.max_request_bytes };
  const gateway = new Gateway(doorOpts);
  const forward = new ForwardProxy(doorOpts);
  let accepting = false;
  const admin = new AdminServer({ ready: () => accepting, inFlight: () => relay.inFlight });

  const stopAll = async () => {
    gateway.close();
    forward.close();
    await admin.close();
    await upstreams.close();
    await inspector?.close();
  };
  let ports: RunningSluice['ports'];
  try {
    ports = {
      proxy: await gateway.listen(config.listen.proxy),
      forward: await forward.listen(config.listen.forward),
      admin: await admin.listen(config.listen.admin),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
  accepting = true;
  const url = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let stopping: Promise<void> | null = null;
  return {
    config,
    registry,
    relay,
    inspector,
    ports,
    gatewayUrl: url(config.listen.proxy.host, ports.proxy),
    forwardUrl: url(config.listen.forward.host, ports.forward),
    adminUrl: url(config.listen.admin.host, ports.admin),
    stop(graceMs = config.limits.shutdown_grace_ms) {
      stopping ??= (async () => {
        accepting = false;
        gateway.stopAccepting();
        forward.stopAccepting();
        await relay.drain(graceMs);
        await stopAll();
      })();
      return stopping;
    },
  };
}
