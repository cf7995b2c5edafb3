// Assembles one running Sluice from a Config: registry, pipeline, relay, front doors, admin.
// The CLI and the tests both start Sluice through here.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Config } from './config/schema';
import { InterceptionPolicy } from './destinations/interception';
import { SluiceError } from './errors';
import { ConnectDoor } from './frontdoor/connect';
import { InterceptedHttp } from './frontdoor/intercepted';
import { ProxyAuth } from './frontdoor/proxy-auth';
import { TransparentDoor } from './frontdoor/transparent';
import { CertificateAuthority, caPaths, initCa, type CaPaths } from './tls/ca';
import { TlsTerminator, type HandshakeFailure } from './tls/terminate';
import { loadUpstreamTrust } from './upstream/trust';
import { DestinationRegistry } from './destinations/registry';
import { AdminServer, loadAdminToken } from './admin/server';
import { AuditLog } from './audit/log';
import { createSinks, type AuditSink } from './audit/sinks';
import { AuditStage } from './audit/stage';
import { log } from './log';
import { ForwardProxy } from './frontdoor/forward';
import { Gateway } from './frontdoor/gateway';
import { AdapterStage } from './pipeline/adapt';
import { Pipeline, type Stage } from './pipeline/pipeline';
import { Relay } from './pipeline/relay';
import { Upstreams } from './upstream/pools';
import { loadFindingKey } from './detect/findings';
import { BUILTIN_RULES_DIR } from './detect/rules';
import { Inspector } from './detect/pool';
import { DetectStage } from './detect/stage';
import { loadProxyTls } from './identity/mtls';
import { IdentityResolver, IdentityStage } from './identity/stage';
import { Policy } from './policy/policy';
import { PolicyStage } from './policy/stage';
import { METRICS_CONTENT_TYPE, renderMetrics } from './signals/metrics';
import { SignalsStage } from './signals/stage';

/** Keep-alive connections inside intercepted tunnels live this long idle: a new one costs a handshake. */
const INTERCEPTED_IDLE_MS = 60_000;

export interface SluiceOptions {
  config: Config;
  /** Where a reload reads the configuration again (the CLI's config file); without it, reload re-applies `config`. */
  reloadConfig?: () => Promise<Config>;
  /** Stages after the built-in ones (adapter, identity, detection, policy, audit, signals): test captures. */
  stages?: Stage[];
}

export interface RunningSluice {
  readonly config: Config;
  readonly registry: DestinationRegistry;
  readonly relay: Relay;
  /** The detection engine, unless `detect.enabled` is false. */
  readonly inspector: Inspector | undefined;
  /** The signed audit log, unless `audit.enabled` is false. */
  readonly audit: AuditLog | null;
  /** Operational signals: what /metrics and /signals report, and the alerts. */
  readonly signals: SignalsStage;
  /** The interception CA: clients trust `caCert` (`sluice ca path`). */
  readonly ca: CertificateAuthority;
  readonly caCert: string;
  /** Bound ports (useful when the config asked for port 0); transparent is 0 when off. */
  readonly ports: { proxy: number; forward: number; admin: number; transparent: number };
  readonly gatewayUrl: string;
  readonly forwardUrl: string;
  readonly adminUrl: string;
  /** Interception counters: handshakes, failures per destination and client (pinning), leaves, tunnels. */
  interceptionStats(): InterceptionStats;
  /**
   * Reloads policy and rule packs atomically (SIGHUP, file change, POST /admin/reload): rules compile first, the
   * policy swaps last, so a bad file changes nothing. Exchanges already started finish under their version.
   */
  reload(): Promise<ReloadResult>;
  /** Stops accepting, lets in-flight exchanges finish up to `graceMs`, then closes everything. */
  stop(graceMs?: number): Promise<void>;
}

export interface ReloadResult {
  policy_version: string;
  /** Rules in force after the reload; absent when detection is off. */
  rules?: number;
}

export interface InterceptionStats {
  handshakes: number;
  handshake_failures: HandshakeFailure[];
  leaves: { mints: number; hits: number; cached: number };
  tunnels_open: number;
  tunnelled: number;
  intercepted_connections_open: number;
}

/** The enterprise CA from the config, or Sluice's own under data_dir (created on first run, as `sluice ca init` would). */
async function loadCa(config: Config): Promise<{ ca: CertificateAuthority; paths: CaPaths }> {
  const { ca_cert, ca_key, ca_chain, leaf_cache } = config.tls;
  if ((ca_cert === null) !== (ca_key === null)) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', 'tls.ca_cert and tls.ca_key go together: set both for an enterprise CA, or neither for Sluice\'s own');
  }
  let paths: CaPaths;
  if (ca_cert !== null && ca_key !== null) {
    paths = { cert: resolve(ca_cert), key: resolve(ca_key) };
  } else {
    paths = caPaths(config.data_dir);
    const exists = await readFile(paths.cert).then(
      () => true,
      () => false,
    );
    if (!exists) await initCa(config.data_dir);
  }
  return { ca: await CertificateAuthority.load(paths, { chain: ca_chain, cacheSize: leaf_cache }), paths };
}

async function openAudit(config: Config): Promise<{ audit: AuditLog; sinks: AuditSink[] }> {
  const dir = resolve(config.audit.dir ?? join(config.data_dir, 'audit'));
  const sinks = createSinks(config.audit.sinks, config.data_dir, dir);
  const audit = await AuditLog.open(config.audit, config.data_dir, {
    sinks,
    onError: (err) => log('error', 'audit log', { error: err.message, code: (err as { code?: string }).code }),
  });
  log('info', 'audit log', { dir: audit.dir, public_key: audit.publicKeyFile });
  return { audit, sinks };
}

/** uWS only logs a bad certificate file and then serves nothing; check the pair here so the error names it. */
async function checkGatewayTls(config: Config): Promise<{ cert: string; key: string } | undefined> {
  const { gateway_cert: cert, gateway_key: key } = config.tls;
  if (cert === null && key === null) return undefined;
  if (cert === null || key === null) throw new SluiceError('SLUICE_CONFIG_INVALID', 'tls.gateway_cert and tls.gateway_key go together');
  try {
    const x = new X509Certificate(await readFile(cert));
    if (!x.checkPrivateKey(createPrivateKey(await readFile(key)))) throw new Error('the key does not belong to the certificate');
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `tls.gateway_cert ${cert} / tls.gateway_key ${key}: ${(err as Error).message}`, { cause: err });
  }
  return { cert, key };
}

export async function startSluice(opts: SluiceOptions): Promise<RunningSluice> {
  const { config } = opts;
  // Certificates first: a bad file stops the start before anything is running.
  const { ca, paths: caFiles } = await loadCa(config);
  const gatewayTls = await checkGatewayTls(config);
  const proxyTls = await loadProxyTls(config);
  const trust = await loadUpstreamTrust(config.tls.upstream_ca);
  const adminToken = await loadAdminToken(config);
  const digestKey = await loadFindingKey(config.data_dir);
  // Rules load and compile before any port opens: a bad pack stops the start instead of serving uninspected.
  const inspector = config.detect.enabled
    ? await Inspector.start({
        rulesDirs: [BUILTIN_RULES_DIR, ...config.detect.rules],
        threads: config.detect.threads,
        timeoutMs: config.detect.timeout_ms,
        inlineMaxChars: config.detect.inline_max_chars,
        maxQueue: config.detect.max_queue,
        digestKey,
        cacheDir: join(config.data_dir, 'cache'),
      })
    : undefined;
  const registry = new DestinationRegistry(config);
  const policyStage = new PolicyStage(new Policy(config.policy, config.routes), inspector ? (texts) => inspector.inspect(texts) : undefined);
  const identityStage = new IdentityStage(await IdentityResolver.load(config.identity));
  // The log opens (key, crash recovery, retention) before any port: an exchange must never go unrecorded.
  let audit: AuditLog | null = null;
  let sinks: AuditSink[] = [];
  try {
    if (config.audit.enabled) ({ audit, sinks } = await openAudit(config));
  } catch (err) {
    await inspector?.close();
    throw err;
  }
  const auditStage = audit ? new AuditStage(audit, { capture: config.audit.capture, digestKey, homeJurisdiction: config.signals.home_jurisdiction, onWriteError: config.audit.on_write_error }) : null;
  let signals: SignalsStage;
  try {
    signals = await SignalsStage.create(config.signals, { audit: audit ? (json) => audit!.append(json) : null });
  } catch (err) {
    await inspector?.close();
    await audit?.close();
    throw err;
  }
  const pipeline = new Pipeline([
    new AdapterStage(config.limits.max_inspect_bytes),
    identityStage,
    ...(inspector ? [new DetectStage(inspector, config.limits.max_inspect_bytes)] : []),
    policyStage,
    ...(auditStage ? [auditStage] : []),
    signals,
    ...(opts.stages ?? []),
  ]);
  const upstreams = new Upstreams({
    connectionsPerOrigin: config.limits.connections_per_origin,
    timeoutMs: config.limits.upstream_timeout_ms,
    trust: trust.context,
  });
  const relay = new Relay(pipeline, upstreams, { maxInspectBytes: config.limits.max_inspect_bytes });
  const doorOpts = { registry, relay, maxRequestBytes: config.limits.max_request_bytes };
  const gateway = new Gateway({ ...doorOpts, ...(gatewayTls ? { tls: gatewayTls } : {}) });
  const policy = new InterceptionPolicy(config, registry);
  const terminator = new TlsTerminator(ca, { handshakeTimeoutMs: config.tls.handshake_timeout_ms });
  const intercepted = new InterceptedHttp({ relay, maxRequestBytes: config.limits.max_request_bytes, idleTimeoutMs: INTERCEPTED_IDLE_MS });
  let ports: RunningSluice['ports'] = { proxy: 0, forward: 0, admin: 0, transparent: 0 };
  const l = config.listen;
  const connect = new ConnectDoor({
    registry,
    relay,
    policy,
    terminator,
    intercepted,
    auth: new ProxyAuth(config),
    selfPorts: () => [ports.proxy, ports.forward, ports.admin, ports.transparent].filter((p) => p > 0),
    selfHosts: [l.proxy.host, l.forward.host, l.admin.host, ...(l.transparent ? [l.transparent.host] : [])],
    connectTimeoutMs: Math.min(config.limits.upstream_timeout_ms, 30_000),
  });
  const forward = new ForwardProxy({
    ...doorOpts,
    auth: new ProxyAuth(config),
    connect,
    ...(proxyTls ? { tls: proxyTls, handshakeTimeoutMs: config.tls.handshake_timeout_ms } : {}),
  });
  const transparent = l.transparent ? new TransparentDoor({ registry, relay, policy, terminator, intercepted }) : null;
  let accepting = false;
  const interceptionStats = (): InterceptionStats => {
    const t = terminator.stats();
    return {
      handshakes: t.handshakes,
      handshake_failures: t.failures,
      leaves: t.leaves,
      ...connect.stats(),
      intercepted_connections_open: intercepted.openConnections,
    };
  };
  let reloading: Promise<ReloadResult> = Promise.resolve({ policy_version: policyStage.version });
  const reload = (): Promise<ReloadResult> => {
    // One at a time, in order: a burst of file events and a SIGHUP do not interleave half-applied versions.
    reloading = reloading.catch(() => undefined).then(async () => {
      const next = opts.reloadConfig ? await opts.reloadConfig() : config;
      const policy = new Policy(next.policy, next.routes);
      const identity = await IdentityResolver.load(next.identity);
      const set = inspector ? await inspector.reload([BUILTIN_RULES_DIR, ...next.detect.rules]) : undefined;
      identityStage.swap(identity);
      policyStage.swap(policy);
      return { policy_version: policy.version, ...(set ? { rules: set.rules.length } : {}) };
    });
    return reloading;
  };
  const admin = new AdminServer({
    reload,
    // A load balancer should send nobody to an instance that would refuse them for want of an audit log.
    ready: () => accepting && (audit === null || audit.healthy || config.audit.on_write_error === 'open'),
    inFlight: () => relay.inFlight,
    stats: () => ({
      in_flight: relay.inFlight,
      policy: policyStage.stats(),
      interception: interceptionStats(),
      detection: inspector?.stats() ?? null,
      audit: audit ? { ...audit.stats(), ...auditStage!.stats(), sinks: sinks.map((k) => k.stats()) } : null,
      signals: signals.stats(),
    }),
    metrics: async () => ({ contentType: METRICS_CONTENT_TYPE, body: await renderMetrics(signals) }),
    signals: (window) => signals.snapshot(window),
  }, { token: adminToken });

  const stopAll = async () => {
    gateway.close();
    forward.close();
    transparent?.close();
    intercepted.close();
    await admin.close();
    await upstreams.close();
    await inspector?.close();
    await signals.close();
    // Last: records of exchanges that ended during the drain (and their response scans) are sealed and flushed.
    await audit?.close().catch((err: Error) => log('error', 'audit log not closed cleanly', { error: err.message }));
  };
  try {
    ports = {
      proxy: await gateway.listen(l.proxy),
      forward: await forward.listen(l.forward),
      admin: await admin.listen(l.admin),
      transparent: transparent && l.transparent ? await transparent.listen(l.transparent) : 0,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
  accepting = true;
  const url = (host: string, port: number, scheme = 'http') => `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let stopping: Promise<void> | null = null;
  return {
    config,
    registry,
    relay,
    inspector,
    audit,
    signals,
    ca,
    caCert: caFiles.cert,
    ports,
    gatewayUrl: url(config.listen.proxy.host, ports.proxy, gatewayTls ? 'https' : 'http'),
    forwardUrl: url(config.listen.forward.host, ports.forward, proxyTls ? 'https' : 'http'),
    adminUrl: url(config.listen.admin.host, ports.admin),
    interceptionStats,
    reload,
    stop(graceMs = config.limits.shutdown_grace_ms) {
      stopping ??= (async () => {
        accepting = false;
        gateway.stopAccepting();
        forward.stopAccepting();
        transparent?.stopAccepting();
        intercepted.stopAccepting();
        await relay.drain(graceMs);
        await stopAll();
      })();
      return stopping;
    },
  };
}
