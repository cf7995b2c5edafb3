// Proxy-Authorization (Basic) on the forward proxy: an identity for every exchange of a connection.
// With interception.proxy_auth.users the password is checked; without, the user name is an unverified claim.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema';
import type { Identity } from '../pipeline/exchange';

export type ProxyAuthResult = { ok: true; identity: Identity | null } | { ok: false; message: string };

export const PROXY_AUTH_CHALLENGE = ['proxy-authenticate', 'Basic realm="sluice", charset="UTF-8"'] as const;

export class ProxyAuth {
  private readonly required: boolean;
  private readonly users: Map<string, Buffer>;

  constructor(config: Config) {
    this.required = config.interception.proxy_auth.required;
    this.users = new Map(Object.entries(config.interception.proxy_auth.users).map(([u, h]) => [u, Buffer.from(h, 'hex')]));
  }

  check(header: string | undefined): ProxyAuthResult {
    if (!header) {
      return this.required ? { ok: false, message: 'this proxy requires Proxy-Authorization (Basic); set user:password in the proxy URL' } : { ok: true, identity: null };
    }
    const m = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return { ok: false, message: 'Proxy-Authorization must use the Basic scheme' };
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    if (!user) return { ok: false, message: 'Proxy-Authorization names no user' };
    if (this.users.size === 0) return { ok: true, identity: { subject: user, source: 'proxy_auth', verified: false } };
    const want = this.users.get(user);
    const got = createHash('sha256').update(password).digest();
    // Compare even for an unknown user so timing does not tell which user names exist.
    const match = timingSafeEqual(got, want ?? ZERO) && want !== undefined;
    if (!match) return { ok: false, message: `proxy credentials for "${user}" were not accepted` };
    return { ok: true, identity: { subject: user, source: 'proxy_auth', verified: true } };
  }
}

const ZERO = Buffer.alloc(32);
