// The configuration's shape, defaults and per-key checks, as one table.
// load.ts walks it against the YAML document so every error names its key and line.

import { CATEGORIES, SEVERITIES } from '../detect/categories';
import type { Format } from '../providers/types';
import { availableParallelism } from 'node:os';

export interface ListenAddress {
  host: string;
  port: number;
}

/** An operator-added destination (an internal model server, a provider Sluice does not know yet). */
export interface DestinationSpec {
  /** Host pattern: exact (`llm.corp.example`) or `*.suffix` wildcard. */
  host: string;
  provider: string;
  format: Format;
  region?: string;
  jurisdiction?: string;
  /** Gateway prefix (`/{prefix}/…`) to reach it without a proxy setting. */
  prefix?: string;
  /** Upstream scheme and port when they are not https:443. */
  origin?: string;
}

export interface Config {
  listen: {
    proxy: ListenAddress;
    /** Forward proxy: HTTP_PROXY / HTTPS_PROXY (absolute-form requests and CONNECT). */
    forward: ListenAddress;
    admin: ListenAddress;
    /** Transparent TLS (DNS override or redirect): certificate chosen by SNI. Off unless set. */
    transparent: ListenAddress | null;
  };
  data_dir: string;
  /** Provider host → origin that is dialled instead (tests, benchmarks, a corporate relay). */
  upstreams: Record<string, string>;
  destinations: {
    /** Provider ids the organisation has approved; every other AI destination is unsanctioned. */
    sanctioned: string[];
    /** Azure OpenAI resource name → Azure region (`westeurope`), for jurisdiction. */
    azure_regions: Record<string, string>;
    add: DestinationSpec[];
  };
  limits: {
    max_request_bytes: number;
    upstream_timeout_ms: number;
    /** Decoded bytes inspected per body: a bigger response is relayed, the rest uninspected; a bigger request follows policy.on_failure.oversized_body. */
    max_inspect_bytes: number;
    /** How long SIGTERM waits for in-flight exchanges before closing them. */
    shutdown_grace_ms: number;
    /** Keep-alive connections per upstream origin. */
    connections_per_origin: number;
  };
  /** Certificates: the interception CA, TLS on the gateway, trust for upstreams. */
  tls: {
    /** Enterprise CA certificate and key (PEM); both unset means Sluice's own CA under data_dir/ca, created on first run. */
    ca_cert: string | null;
    ca_key: string | null;
    /** Intermediate certificates (PEM files) sent after each leaf, leaf-most first. */
    ca_chain: string[];
    /** Minted leaf contexts kept (LRU). */
    leaf_cache: number;
    /** A client that has not finished its TLS handshake by then is cut. */
    handshake_timeout_ms: number;
    /** Extra CA files trusted for upstream connections, besides Node's roots and the system bundle. */
    upstream_ca: string[];
    /** Serve the gateway over HTTPS with this certificate and key (PEM files). */
    gateway_cert: string | null;
    gateway_key: string | null;
    /** Serve the forward proxy over TLS (HTTPS_PROXY=https://…) with this certificate and key (PEM files). */
    proxy_cert: string | null;
    proxy_key: string | null;
    /** CA files client certificates on the TLS forward proxy must chain to; a verified one is the caller's identity. */
    client_ca: string[];
    /** Refuse the TLS handshake without a verified client certificate (otherwise one is optional). */
    client_cert_required: boolean;
  };
  /** What the forward proxy does with each CONNECT target. */
  interception: {
    /** Host patterns terminated and inspected besides the known AI hosts. */
    intercept: string[];
    /** Host patterns passed through blind even when they are AI hosts (certificate-pinning apps). */
    tunnel: string[];
    /** Host patterns refused with 403. Deny wins over tunnel, tunnel over intercept. */
    deny: string[];
    /** Hosts that are neither AI nor listed: tunnelled (visibility of AI first) or denied. */
    unknown: 'tunnel' | 'deny';
    /** CONNECT target ports allowed; anything else (25, 22, …) is refused. */
    ports: number[];
    /** CONNECT to an IP address names no host the registry can judge; refused unless allowed. */
    allow_ip_literals: boolean;
    proxy_auth: {
      /** Refuse (407) clients without valid Proxy-Authorization. */
      required: boolean;
      /** user → hex SHA-256 of the password. Empty: the user name is taken as an unverified identity. */
      users: Record<string, string>;
    };
  };
  /** Who is asking: signed identity tokens and API-key fingerprints mapped to services (docs/policy.md). */
  identity: IdentityConfig;
  /** Classes of traffic; every exchange gets exactly one (the first that matches, else `default`). */
  routes: RouteSpec[];
  /** What Sluice does with what it sees (docs/policy.md). */
  policy: PolicyConfig;
  /** The detection engine (rule packs, worker pool). */
  detect: {
    enabled: boolean;
    /** Extra rule pack directories, loaded after the built-ins; a rule there replaces the built-in of the same id. */
    rules: string[];
    /** Worker threads; default one per core. 0 scans on the main thread. */
    threads: number;
    /** Per inspect call, queue wait included. */
    timeout_ms: number;
    /** Calls up to this many characters are scanned inline: the worker hop costs more (bench/scan.ts). */
    inline_max_chars: number;
    /** Calls waiting for a worker beyond this are refused as overloaded. */
    max_queue: number;
  };
  /** The signed, tamper-evident audit log (docs/audit-format.md). */
  audit: AuditConfig;
  /** The admin listener (/healthz, /readyz, /metrics, /signals, the dashboard). */
  admin: {
    /** Bearer token file; required when listen.admin is not a loopback address (only /healthz and /readyz stay open). */
    token_file: string | null;
  };
  /** Operational signals: metrics, the dashboard, alerts. */
  signals: SignalsConfig;
}

export interface AlertRuleSpec {
  id: string;
  /** pii_rate: share of a route's exchanges with PII; p99: total latency p99 in ms; p99_widening: the window's p99
   *  over the last hour's (the whole run's for a 1h window), a ratio such as 2; failure_rate: a destination's
   *  failure share; new_unsanctioned: the first exchange to an unsanctioned or shadow destination not seen before. */
  kind: 'pii_rate' | 'p99' | 'p99_widening' | 'failure_rate' | 'new_unsanctioned';
  /** Fires above this (a fraction for rates, ms for p99); unused by new_unsanctioned. */
  threshold?: number;
  /** Default 5m. */
  window?: '1m' | '5m' | '1h';
  /** Rates and p99 need this many exchanges in the window before they can fire (default 10). */
  min_requests?: number;
  /** Only this route (pii_rate) or destination host (failure_rate, p99); all when absent. */
  route?: string;
  destination?: string;
}

export interface SignalsConfig {
  /** The jurisdiction of callers whose identity names none (for cross-region traffic); null: such calls are not counted. */
  home_jurisdiction: string | null;
  alerts: AlertRuleSpec[];
  /** POSTs each alert as JSON; off when null. */
  webhook: { url: string | null; token_file: string | null };
  /** Distinct destinations and routes tracked as labels; beyond, they count under `other` (bounded cardinality). */
  max_destinations: number;
  max_routes: number;
}

/** A SIEM destination fed beside the audit files (at least once, records carry ids). */
export interface AuditSinkSpec {
  name: string;
  type: 'syslog' | 'http';
  /** syslog: `tcp://host:port` or `tls://host:port`; http: the endpoint URL. */
  url: string;
  /** http body: Splunk HEC events, or NDJSON bulk (Elastic `_bulk` action lines). */
  format?: 'hec' | 'ndjson';
  /** http: sent as `Authorization: Splunk <token>` (hec) or `Bearer <token>` (ndjson). File path, read at start. */
  token_file?: string | null;
  /** tls: extra CA file trusted for the sink's certificate. */
  ca?: string | null;
  /** Records held in memory while the sink is slow; beyond this they spill to disk. */
  queue_records?: number;
  /** Records per delivery (one HTTP request, or one write of syslog frames). */
  batch_records?: number;
  /** Retry backoff ceiling. */
  max_backoff_ms?: number;
}

export interface AuditConfig {
  enabled: boolean;
  /** Segment directory; default `data_dir/audit`. */
  dir: string | null;
  /** Ed25519 signing key (JSON, mode 0600); default `data_dir/keys/audit-signing.json`, created on first run. */
  key_file: string | null;
  /** A batch closes (Merkle root, signed checkpoint) after this many records or this many ms, whichever first. */
  batch_records: number;
  batch_ms: number;
  /** A segment rotates when it passes this size or age. */
  segment_max_bytes: number;
  segment_max_age_ms: number;
  /** none: leave it to the OS; batch: fsync before a checkpoint is written; record: fsync every append. */
  fsync: 'none' | 'batch' | 'record';
  /** Segments older than this are deleted, leaving a signed checkpoint that names the pruned range. */
  retention_days: number;
  /** Allow retention below 180 days (EU AI Act Art. 19 asks for at least six months). */
  retention_force: boolean;
  /** Store prompt and response text, detected values masked. Off: no content, only findings. */
  capture: boolean;
  /** When the log cannot be written: closed refuses new requests, open lets them pass and alerts. */
  on_write_error: FailMode;
  sinks: AuditSinkSpec[];
}

export interface IdentityAttributesSpec {
  subject: string;
  tenant?: string;
  app?: string;
  groups?: string[];
  jurisdiction?: string;
}

export interface IdentityConfig {
  /** Request header carrying a signed JWT; an x-sluice- header, so it never leaves. */
  header: string;
  /** Front doors whose identity header is honoured; a token on any other is refused as untrusted. */
  listeners: Array<'gateway' | 'forward' | 'connect' | 'transparent'>;
  jwt: {
    /** PEM public key (RS256, ES256, EdDSA) or, with secret_file, an HS256 secret. */
    key_file: string | null;
    secret_file: string | null;
    jwks_url: string | null;
    issuer: string | null;
    audience: string | null;
    algorithms: string[];
    clock_skew_s: number;
  };
  /** Static provider keys, known by the SHA-256 of the key (never the key), mapped to a service identity. */
  api_keys: Array<IdentityAttributesSpec & { fingerprint: string }>;
}

export interface RouteSpec {
  name: string;
  /** Every given condition must hold; an empty list is no condition. */
  match: {
    subjects: string[];
    tenants: string[];
    apps: string[];
    groups: string[];
    providers: string[];
    path_prefixes: string[];
    models: string[];
  };
  /** Providers, models and tools this route may use; empty = any. */
  allow: { providers: string[]; models: string[]; tools: string[] };
}

export type PolicyAction = 'allow' | 'alert' | 'redact' | 'block';
export type FailMode = 'open' | 'closed';

/** One content rule: findings that match every given condition get `action`. */
export interface ContentRuleSpec {
  id: string;
  action: PolicyAction;
  /** Finding categories (pii, credential…); empty = any. */
  categories: string[];
  /** Rule ids (aws-access-key-id…); empty = any. */
  rules: string[];
  /** Lowest severity that matches. */
  min_severity: 'low' | 'medium' | 'high' | 'critical';
  min_confidence: number;
  /** Routes the rule applies to; empty = every route. */
  routes: string[];
  /** What the rule looks at: the request (default), the response, or both. */
  on: Array<'request' | 'response'>;
}

/** GDPR Chapter V style: data of these categories from identities in these jurisdictions stays in these. */
export interface ResidencyRuleSpec {
  id: string;
  action: PolicyAction;
  /** Identity jurisdictions (EU, UK…) the rule protects. */
  identity_jurisdictions: string[];
  /** Finding categories that count as the protected data; empty = any finding. */
  categories: string[];
  /** Destination jurisdictions that may receive it. */
  allowed_jurisdictions: string[];
}

export interface PolicyConfig {
  /** monitor: decide and record, never block (a block is recorded as an alert). enforce: act. */
  mode: 'monitor' | 'enforce';
  /** A present but invalid, forged or expired identity token: refused with 401, or treated as anonymous. */
  invalid_identity: 'refuse' | 'anonymous';
  /** A route's allow-list does not include the provider or model. */
  outside_route: PolicyAction;
  /** AI destinations outside destinations.sanctioned. */
  unsanctioned: PolicyAction;
  /** Request content rules, first match by strength (block over alert over allow). */
  content: ContentRuleSpec[];
  residency: ResidencyRuleSpec[];
  /** Per failure kind: open forwards uninspected (counted, recorded), closed blocks. */
  on_failure: {
    inspect_timeout: FailMode;
    inspect_crashed: FailMode;
    inspect_overloaded: FailMode;
    unparseable_body: FailMode;
    /** A request body over limits.max_inspect_bytes (still within limits.max_request_bytes). */
    oversized_body: FailMode;
  };
}

export const FORMATS: readonly Format[] = ['openai', 'anthropic', 'gemini', 'bedrock', 'generic'];

/** Embedded defaults: `sluice start` with no file runs on these. */
export function defaultConfig(): Config {
  return {
    listen: {
      proxy: { host: '127.0.0.1', port: 8080 },
      forward: { host: '127.0.0.1', port: 8081 },
      admin: { host: '127.0.0.1', port: 9090 },
      transparent: null,
    },
    data_dir: './sluice-data',
    upstreams: {},
    destinations: { sanctioned: [], azure_regions: {}, add: [] },
    limits: {
      max_request_bytes: 10 * 1024 * 1024,
      upstream_timeout_ms: 300_000,
      max_inspect_bytes: 16 * 1024 * 1024,
      shutdown_grace_ms: 10_000,
      connections_per_origin: 128,
    },
    tls: {
      ca_cert: null,
      ca_key: null,
      ca_chain: [],
      leaf_cache: 1000,
      handshake_timeout_ms: 10_000,
      upstream_ca: [],
      gateway_cert: null,
      gateway_key: null,
      proxy_cert: null,
      proxy_key: null,
      client_ca: [],
      client_cert_required: false,
    },
    interception: {
      intercept: [],
      tunnel: [],
      deny: [],
      unknown: 'tunnel',
      ports: [443],
      allow_ip_literals: false,
      proxy_auth: { required: false, users: {} },
    },
    identity: {
      header: 'x-sluice-identity',
      listeners: ['gateway', 'forward', 'connect', 'transparent'],
      jwt: { key_file: null, secret_file: null, jwks_url: null, issuer: null, audience: null, algorithms: ['RS256', 'ES256', 'EdDSA'], clock_skew_s: 30 },
      api_keys: [],
    },
    routes: [],
    policy: {
      mode: 'monitor',
      invalid_identity: 'anonymous',
      outside_route: 'block',
      unsanctioned: 'alert',
      content: [],
      residency: [],
      on_failure: { inspect_timeout: 'open', inspect_crashed: 'open', inspect_overloaded: 'open', unparseable_body: 'open', oversized_body: 'open' },
    },
    detect: {
      enabled: true,
      rules: [],
      threads: availableParallelism(),
      timeout_ms: 1000,
      inline_max_chars: 4096,
      max_queue: 1024,
    },
    audit: {
      enabled: true,
      dir: null,
      key_file: null,
      batch_records: 1024,
      batch_ms: 250,
      segment_max_bytes: 64 * 1024 * 1024,
      segment_max_age_ms: 3_600_000,
      fsync: 'batch',
      retention_days: 190,
      retention_force: false,
      capture: false,
      on_write_error: 'closed',
      sinks: [],
    },
    admin: { token_file: null },
    signals: {
      home_jurisdiction: null,
      alerts: [],
      webhook: { url: null, token_file: null },
      max_destinations: 200,
      max_routes: 100,
    },
  };
}

/** A check returns the converted value, or a string saying what is wrong. */
export type Check = (value: unknown) => { ok: true; value: unknown } | { ok: false; why: string };

export type Node =
  | { kind: 'value'; check: Check }
  | { kind: 'object'; fields: Record<string, Node>; required?: readonly string[] }
  | { kind: 'map'; key: Check; value: Check }
  | { kind: 'list'; item: Node };

const ok = (value: unknown) => ({ ok: true as const, value });
const bad = (why: string) => ({ ok: false as const, why });

const address: Check = (v) => {
  if (typeof v !== 'string' && typeof v !== 'number') return bad('expected "host:port"');
  const s = String(v);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(s) ?? /^()()(\d{1,5})$/.exec(s);
  if (!m) return bad(`expected "host:port", got "${s}"`);
  const port = Number(m[3]);
  if (port > 65535) return bad(`port ${port} is out of range 0-65535`);
  return ok({ host: m[1] || m[2] || '127.0.0.1', port });
};

const bool: Check = (v) => (typeof v === 'boolean' ? ok(v) : bad('expected true or false'));

const str: Check = (v) => (typeof v === 'string' && v.length > 0 ? ok(v) : bad('expected a non-empty string'));

const hostPattern: Check = (v) =>
  typeof v === 'string' && /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(v)
    ? ok(v.toLowerCase())
    : bad('expected a host name, optionally starting with "*."');

const origin: Check = (v) => {
  if (typeof v !== 'string') return bad('expected an origin like "http://127.0.0.1:9999"');
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return bad(`"${v}" is not a URL; expected an origin like "http://127.0.0.1:9999"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return bad(`origin must be http or https, got "${u.protocol}"`);
  if (u.pathname !== '/' || u.search) return bad('an origin has no path or query');
  return ok(u.origin);
};

const positiveInt =
  (min: number, max: number): Check =>
  (v) =>
    Number.isInteger(v) && (v as number) >= min && (v as number) <= max
      ? ok(v)
      : bad(`expected an integer from ${min} to ${max}`);

const oneOf =
  (choices: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && choices.includes(v) ? ok(v) : bad(`expected one of ${choices.join(', ')}`);

const prefix: Check = (v) =>
  typeof v === 'string' && /^[a-z0-9][a-z0-9-]*$/.test(v) ? ok(v) : bad('expected a path segment of a-z, 0-9 and "-"');

const sha256Hex: Check = (v) =>
  typeof v === 'string' && /^[0-9a-f]{64}$/i.test(v)
    ? ok(v.toLowerCase())
    : bad('expected the hex SHA-256 of the password (printf %s "$PASSWORD" | sha256sum)');

const ACTIONS = ['allow', 'alert', 'redact', 'block'] as const;
const FAIL_MODES = ['open', 'closed'] as const;

const fraction: Check = (v) => (typeof v === 'number' && v >= 0 && v <= 1 ? ok(v) : bad('expected a number from 0 to 1'));

const sluiceHeader: Check = (v) =>
  typeof v === 'string' && /^x-sluice-[a-z0-9-]+$/i.test(v) ? ok(v.toLowerCase()) : bad('expected a header name starting with x-sluice- (those never leave Sluice)');

const httpUrl: Check = (v) => {
  if (typeof v !== 'string') return bad('expected a URL');
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:' ? ok(u.href) : bad('expected an http(s) URL');
  } catch {
    return bad(`"${v}" is not a URL`);
  }
};

const value = (check: Check): Node => ({ kind: 'value', check });

export const schema: Node = {
  kind: 'object',
  fields: {
    listen: {
      kind: 'object',
      fields: { proxy: value(address), forward: value(address), admin: value(address), transparent: value(address) },
    },
    data_dir: value(str),
    upstreams: { kind: 'map', key: hostPattern, value: origin },
    destinations: {
      kind: 'object',
      fields: {
        sanctioned: { kind: 'list', item: value(str) },
        azure_regions: { kind: 'map', key: str, value: str },
        add: {
          kind: 'list',
          item: {
            kind: 'object',
            required: ['host', 'provider', 'format'],
            fields: {
              host: value(hostPattern),
              provider: value(str),
              format: value(oneOf(FORMATS)),
              region: value(str),
              jurisdiction: value(str),
              prefix: value(prefix),
              origin: value(origin),
            },
          },
        },
      },
    },
    limits: {
      kind: 'object',
      fields: {
        max_request_bytes: value(positiveInt(1, 1 << 30)),
        upstream_timeout_ms: value(positiveInt(100, 3_600_000)),
        max_inspect_bytes: value(positiveInt(1024, 1 << 30)),
        shutdown_grace_ms: value(positiveInt(0, 600_000)),
        connections_per_origin: value(positiveInt(1, 10_000)),
      },
    },
    tls: {
      kind: 'object',
      fields: {
        ca_cert: value(str),
        ca_key: value(str),
        ca_chain: { kind: 'list', item: value(str) },
        leaf_cache: value(positiveInt(1, 1_000_000)),
        handshake_timeout_ms: value(positiveInt(100, 600_000)),
        upstream_ca: { kind: 'list', item: value(str) },
        gateway_cert: value(str),
        gateway_key: value(str),
        proxy_cert: value(str),
        proxy_key: value(str),
        client_ca: { kind: 'list', item: value(str) },
        client_cert_required: value(bool),
      },
    },
    interception: {
      kind: 'object',
      fields: {
        intercept: { kind: 'list', item: value(hostPattern) },
        tunnel: { kind: 'list', item: value(hostPattern) },
        deny: { kind: 'list', item: value(hostPattern) },
        unknown: value(oneOf(['tunnel', 'deny'])),
        ports: { kind: 'list', item: value(positiveInt(1, 65535)) },
        allow_ip_literals: value(bool),
        proxy_auth: {
          kind: 'object',
          fields: {
            required: value(bool),
            users: { kind: 'map', key: str, value: sha256Hex },
          },
        },
      },
    },
    identity: {
      kind: 'object',
      fields: {
        header: value(sluiceHeader),
        listeners: { kind: 'list', item: value(oneOf(['gateway', 'forward', 'connect', 'transparent'])) },
        jwt: {
          kind: 'object',
          fields: {
            key_file: value(str),
            secret_file: value(str),
            jwks_url: value(httpUrl),
            issuer: value(str),
            audience: value(str),
            algorithms: { kind: 'list', item: value(oneOf(['HS256', 'RS256', 'ES256', 'EdDSA'])) },
            clock_skew_s: value(positiveInt(0, 3600)),
          },
        },
        api_keys: {
          kind: 'list',
          item: {
            kind: 'object',
            required: ['fingerprint', 'subject'],
            fields: {
              fingerprint: value(sha256Hex),
              subject: value(str),
              tenant: value(str),
              app: value(str),
              groups: { kind: 'list', item: value(str) },
              jurisdiction: value(str),
            },
          },
        },
      },
    },
    routes: {
      kind: 'list',
      item: {
        kind: 'object',
        required: ['name'],
        fields: {
          name: value(prefix),
          match: {
            kind: 'object',
            fields: {
              subjects: { kind: 'list', item: value(str) },
              tenants: { kind: 'list', item: value(str) },
              apps: { kind: 'list', item: value(str) },
              groups: { kind: 'list', item: value(str) },
              providers: { kind: 'list', item: value(str) },
              path_prefixes: { kind: 'list', item: value(str) },
              models: { kind: 'list', item: value(str) },
            },
          },
          allow: {
            kind: 'object',
            fields: {
              providers: { kind: 'list', item: value(str) },
              models: { kind: 'list', item: value(str) },
              tools: { kind: 'list', item: value(str) },
            },
          },
        },
      },
    },
    policy: {
      kind: 'object',
      fields: {
        mode: value(oneOf(['monitor', 'enforce'])),
        invalid_identity: value(oneOf(['refuse', 'anonymous'])),
        outside_route: value(oneOf(ACTIONS)),
        unsanctioned: value(oneOf(ACTIONS)),
        content: {
          kind: 'list',
          item: {
            kind: 'object',
            required: ['id', 'action'],
            fields: {
              id: value(str),
              action: value(oneOf(ACTIONS)),
              categories: { kind: 'list', item: value(oneOf(CATEGORIES)) },
              rules: { kind: 'list', item: value(str) },
              min_severity: value(oneOf(SEVERITIES)),
              min_confidence: value(fraction),
              routes: { kind: 'list', item: value(prefix) },
              on: { kind: 'list', item: value(oneOf(['request', 'response'])) },
            },
          },
        },
        residency: {
          kind: 'list',
          item: {
            kind: 'object',
            required: ['id', 'action', 'identity_jurisdictions', 'allowed_jurisdictions'],
            fields: {
              id: value(str),
              action: value(oneOf(ACTIONS)),
              identity_jurisdictions: { kind: 'list', item: value(str) },
              categories: { kind: 'list', item: value(oneOf(CATEGORIES)) },
              allowed_jurisdictions: { kind: 'list', item: value(str) },
            },
          },
        },
        on_failure: {
          kind: 'object',
          fields: {
            inspect_timeout: value(oneOf(FAIL_MODES)),
            inspect_crashed: value(oneOf(FAIL_MODES)),
            inspect_overloaded: value(oneOf(FAIL_MODES)),
            unparseable_body: value(oneOf(FAIL_MODES)),
            oversized_body: value(oneOf(FAIL_MODES)),
          },
        },
      },
    },
    detect: {
      kind: 'object',
      fields: {
        enabled: value(bool),
        rules: { kind: 'list', item: value(str) },
        threads: value(positiveInt(0, 256)),
        timeout_ms: value(positiveInt(1, 600_000)),
        inline_max_chars: value(positiveInt(0, 1 << 30)),
        max_queue: value(positiveInt(1, 1_000_000)),
      },
    },
    audit: {
      kind: 'object',
      fields: {
        enabled: value(bool),
        dir: value(str),
        key_file: value(str),
        batch_records: value(positiveInt(1, 1 << 20)),
        batch_ms: value(positiveInt(1, 3_600_000)),
        segment_max_bytes: value(positiveInt(4096, 2 ** 40)),
        segment_max_age_ms: value(positiveInt(1000, 366 * 86_400_000)),
        fsync: value(oneOf(['none', 'batch', 'record'])),
        retention_days: value(positiveInt(1, 36_500)),
        retention_force: value(bool),
        capture: value(bool),
        on_write_error: value(oneOf(FAIL_MODES)),
        sinks: {
          kind: 'list',
          item: {
            kind: 'object',
            required: ['name', 'type', 'url'],
            fields: {
              name: value(prefix),
              type: value(oneOf(['syslog', 'http'])),
              url: value(str),
              format: value(oneOf(['hec', 'ndjson'])),
              token_file: value(str),
              ca: value(str),
              queue_records: value(positiveInt(1, 10_000_000)),
              batch_records: value(positiveInt(1, 100_000)),
              max_backoff_ms: value(positiveInt(10, 3_600_000)),
            },
          },
        },
      },
    },
    admin: { kind: 'object', fields: { token_file: value(str) } },
    signals: {
      kind: 'object',
      fields: {
        home_jurisdiction: value(str),
        alerts: {
          kind: 'list',
          item: {
            kind: 'object',
            required: ['id', 'kind'],
            fields: {
              id: value(str),
              kind: value(oneOf(['pii_rate', 'p99', 'p99_widening', 'failure_rate', 'new_unsanctioned'])),
              threshold: value((v) => (typeof v === 'number' && v >= 0 ? ok(v) : bad('expected a number ≥ 0 (a fraction for rates, ms for p99)'))),
              window: value(oneOf(['1m', '5m', '1h'])),
              min_requests: value(positiveInt(1, 1_000_000)),
              route: value(str),
              destination: value(str),
            },
          },
        },
        webhook: { kind: 'object', fields: { url: value(httpUrl), token_file: value(str) } },
        max_destinations: value(positiveInt(1, 100_000)),
        max_routes: value(positiveInt(1, 100_000)),
      },
    },
  },
};
