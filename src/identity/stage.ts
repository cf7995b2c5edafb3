// The identity stage: who is asking, in order of trust: a signed JWT in the identity header, Proxy-Authorization
// (set by the forward proxy), a provider API key mapped to a service by its fingerprint, else the source address.

import { createHash, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { IdentityConfig } from '../config/schema';
import { SluiceError } from '../errors';
import type { Exchange, Identity } from '../pipeline/exchange';
import type { Stage } from '../pipeline/pipeline';

const CACHE_MAX = 10_000;

interface Cached {
  identity: Identity;
  /** Epoch seconds the token stops being valid (exp), Infinity without one. */
  exp: number;
}

/** Verifies identity tokens against the configured key; verified tokens are cached until they expire. */
export class IdentityResolver {
  private readonly config: IdentityConfig;
  private readonly key: KeyObject | JWTVerifyGetKey | null;
  private readonly apiKeys: ReadonlyMap<string, Identity>;
  private readonly cache = new Map<string, Cached>();

  private constructor(config: IdentityConfig, key: KeyObject | JWTVerifyGetKey | null) {
    this.config = config;
    this.key = key;
    this.apiKeys = new Map(
      config.api_keys.map((k) => [k.fingerprint, attributes({ subject: k.subject, source: 'api_key', verified: true }, k)]),
    );
  }

  /** Reads the verification key; a key file that does not load is a config error naming it. */
  static async load(config: IdentityConfig): Promise<IdentityResolver> {
    const { key_file, secret_file, jwks_url } = config.jwt;
    let key: KeyObject | JWTVerifyGetKey | null = null;
    try {
      if (key_file) key = createPublicKey(await readFile(key_file));
      else if (secret_file) key = createSecretKey((await readFile(secret_file, 'utf8')).trim(), 'utf8');
      else if (jwks_url) key = createRemoteJWKSet(new URL(jwks_url), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    } catch (err) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `identity.jwt: cannot load ${key_file ?? secret_file}: ${(err as Error).message}`, { cause: err });
    }
    return new IdentityResolver(config, key);
  }

  get header(): string {
    return this.config.header;
  }

  /** Whether tokens arriving through this front door are considered at all. */
  trusts(frontDoor: string): boolean {
    return (this.config.listeners as readonly string[]).includes(frontDoor);
  }

  apiKey(fingerprint: string): Identity | undefined {
    return this.apiKeys.get(fingerprint);
  }

  /** The verified identity in `token`, or a reason it is not one. Never throws. */
  async verify(token: string): Promise<Identity | string> {
    const hit = this.cache.get(token);
    if (hit) {
      if (hit.exp > Date.now() / 1000 - this.config.jwt.clock_skew_s) return hit.identity;
      this.cache.delete(token);
    }
    if (!this.key) return 'an identity token was sent but identity.jwt has no key configured';
    const j = this.config.jwt;
    // A shared secret only ever verifies HS256, a public key never does: no algorithm confusion either way.
    const secret = typeof this.key !== 'function' && this.key.type === 'secret';
    const algorithms = secret ? ['HS256'] : j.algorithms.filter((a) => a !== 'HS256');
    let payload: JWTPayload;
    try {
      const r = await jwtVerify(token, this.key as KeyObject, {
        algorithms,
        clockTolerance: j.clock_skew_s,
        ...(j.issuer ? { issuer: j.issuer } : {}),
        ...(j.audience ? { audience: j.audience } : {}),
      });
      payload = r.payload;
    } catch (err) {
      const e = err as Error & { code?: string };
      return `identity token refused: ${e.message}${e.code ? ` (${e.code})` : ''}`;
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return 'identity token refused: it names no subject (sub)';
    const identity = attributes({ subject: payload.sub, source: 'jwt', verified: true }, {
      tenant: claim(payload.tenant),
      app: claim(payload.app) ?? claim(payload.azp),
      groups: Array.isArray(payload.groups) ? payload.groups.filter((g): g is string => typeof g === 'string') : undefined,
      jurisdiction: claim(payload.jurisdiction),
    });
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, { identity, exp: typeof payload.exp === 'number' ? payload.exp : Infinity });
    return identity;
  }
}

export class IdentityStage implements Stage {
  readonly name = 'identity';
  private resolver: IdentityResolver;

  constructor(resolver: IdentityResolver) {
    this.resolver = resolver;
  }

  /** New keys and API-key mappings from a reload. */
  swap(resolver: IdentityResolver): void {
    this.resolver = resolver;
  }

  requestHead(x: Exchange): void | Promise<void> {
    const header = this.resolver.header;
    let token: string | undefined;
    for (const [name, value] of x.sluiceHeaders) if (name === header) token = value;
    if (token !== undefined && !this.resolver.trusts(x.frontDoor)) {
      x.identityProblem = `identity token refused: the ${x.frontDoor} listener is not in identity.listeners`;
      token = undefined;
    }
    if (token !== undefined) {
      const bearer = /^bearer\s+/i.test(token) ? token.replace(/^bearer\s+/i, '') : token;
      return this.resolver.verify(bearer.trim()).then((r) => {
        if (typeof r === 'string') {
          x.identityProblem = r;
          this.fallback(x);
        } else x.identity = r;
      });
    }
    this.fallback(x);
  }

  /** No (valid) token: what the front door established (Proxy-Authorization) stands, then a mapped API key, then the address. */
  private fallback(x: Exchange): void {
    if (x.identity) return;
    if (!x.apiKeyFingerprint && x.info.query.includes('key=')) x.apiKeyFingerprint = queryKeyFingerprint(x.info.query);
    const mapped = x.apiKeyFingerprint ? this.resolver.apiKey(x.apiKeyFingerprint) : undefined;
    // The address itself is on the exchange (clientAddress); it proves nothing, so the subject stays anonymous.
    x.identity = mapped ?? { subject: 'anonymous', source: 'address', verified: false };
  }
}

/** Gemini also takes its API key as `?key=`; fingerprinted like a header key, never kept. */
function queryKeyFingerprint(query: string): string {
  const key = new URLSearchParams(query).get('key');
  return key ? createHash('sha256').update(key).digest('hex') : '';
}

function claim(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function attributes(base: Identity, a: { tenant?: string | undefined; app?: string | undefined; groups?: string[] | undefined; jurisdiction?: string | undefined }): Identity {
  const out: Identity = { ...base };
  if (a.tenant) out.tenant = a.tenant;
  if (a.app) out.app = a.app;
  if (a.groups?.length) out.groups = [...a.groups];
  if (a.jurisdiction) out.jurisdiction = a.jurisdiction;
  return out;
}
