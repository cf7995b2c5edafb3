// Decides what the forward proxy does with a CONNECT target or a transparent SNI: intercept, tunnel or deny.
// Visibility first: every known AI host is intercepted, sanctioned or not; everything else follows config.

import { isIP } from 'node:net';
import type { Config } from '../config/schema';
import type { Destination, DestinationRegistry } from './registry';

export type InterceptAction = 'intercept' | 'tunnel' | 'deny';

export interface InterceptDecision {
  action: InterceptAction;
  destination: Destination;
  /** Why, in words an operator recognises from the config (for the 403 body and the record). */
  reason: string;
}

/** An exact host or a `*.suffix` pattern, as the config's host lists hold them. */
class HostList {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      if (p.startsWith('*.')) this.suffixes.push(p.slice(1));
      else this.exact.add(p);
    }
  }

  match(host: string): string | null {
    if (this.exact.has(host)) return host;
    for (const s of this.suffixes) if (host.endsWith(s)) return `*${s}`;
    return null;
  }
}

export class InterceptionPolicy {
  private readonly registry: DestinationRegistry;
  private readonly intercept: HostList;
  private readonly tunnel: HostList;
  private readonly deny: HostList;
  private readonly unknown: 'tunnel' | 'deny';
  private readonly ports: ReadonlySet<number>;
  private readonly allowIpLiterals: boolean;

  constructor(config: Config, registry: DestinationRegistry) {
    const c = config.interception;
    this.registry = registry;
    this.intercept = new HostList(c.intercept);
    this.tunnel = new HostList(c.tunnel);
    this.deny = new HostList(c.deny);
    this.unknown = c.unknown;
    this.ports = new Set(c.ports);
    this.allowIpLiterals = c.allow_ip_literals;
  }

  /** `host` is lower-case without brackets; `port` the CONNECT port (443 for transparent). */
  decide(host: string, port: number): InterceptDecision {
    const destination = this.registry.byHost(port === 443 ? host : `${host.includes(':') ? `[${host}]` : host}:${port}`);
    if (!this.ports.has(port)) {
      return { action: 'deny', destination, reason: `port ${port} is not in interception.ports (${[...this.ports].join(', ')})` };
    }
    if (isIP(host) && !this.allowIpLiterals) {
      return { action: 'deny', destination, reason: 'CONNECT to an IP address names no host to judge; connect by host name (interception.allow_ip_literals)' };
    }
    let m = this.deny.match(host);
    if (m) return { action: 'deny', destination, reason: `host matches interception.deny "${m}"` };
    m = this.tunnel.match(host);
    if (m) return { action: 'tunnel', destination, reason: `host matches interception.tunnel "${m}"` };
    m = this.intercept.match(host);
    if (m) return { action: 'intercept', destination, reason: `host matches interception.intercept "${m}"` };
    if (destination.tier !== 'unknown') return { action: 'intercept', destination, reason: `known AI destination (${destination.provider})` };
    if (this.unknown === 'deny') return { action: 'deny', destination, reason: 'not an AI destination and interception.unknown is deny' };
    return { action: 'tunnel', destination, reason: 'not an AI destination' };
  }
}
