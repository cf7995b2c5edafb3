// Resolves a host (forward proxy) or a gateway path prefix to a Destination.
// Built once from catalog.ts plus the config's additions, sanctioned list and upstream overrides.

import type { Config, DestinationSpec } from '../config/schema';
import type { Format } from '../providers/types';
import { CATALOG, REGION_JURISDICTION, type CatalogEntry } from './catalog';

export interface Destination {
  /** The provider host the request is for (what `Host` says upstream). */
  host: string;
  provider: string;
  format: Format;
  region?: string;
  jurisdiction: string;
  sanctioned: boolean;
  tier: 'major' | 'long-tail' | 'internal' | 'unknown';
  /** A long-tail AI host nobody approved. */
  shadow: boolean;
  /** The origin actually dialled: `https://{host}` unless `upstreams` overrides it. */
  origin: string;
}

export interface GatewayRoute {
  destination: Destination;
  /** Path sent upstream: the request path with the gateway prefix (and label) removed. */
  path: string;
}

interface Rule {
  provider: string;
  format: Format;
  tier: Destination['tier'];
  jurisdiction?: string;
  region?: string;
  origin?: string;
  /** Matches a host; returns the template label (region/resource) or '' for a plain match, null for no match. */
  match(host: string): string | null;
  /** Builds the host from a gateway label (templated rules only). */
  hostFor?(label: string): string;
  label?: 'region' | 'resource';
  /** The host a gateway prefix reaches, for untemplated rules. */
  fixedHost?: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_CACHED_HOSTS = 10_000;

export function jurisdictionOfRegion(region: string | undefined): string {
  if (!region) return 'unknown';
  const r = region.toLowerCase();
  for (const [prefix, j] of REGION_JURISDICTION) if (r === prefix) return j;
  let best = '';
  let found = 'unknown';
  for (const [prefix, j] of REGION_JURISDICTION) {
    if (r.startsWith(prefix) && prefix.length > best.length) {
      best = prefix;
      found = j;
    }
  }
  return found;
}

function ruleFromTemplate(e: CatalogEntry | (DestinationSpec & { tier: Destination['tier'] })): Rule {
  const host = e.host.toLowerCase();
  const t = /\{(region|resource)\}/.exec(host);
  const base = {
    provider: e.provider,
    format: e.format,
    tier: e.tier,
    jurisdiction: e.jurisdiction,
    region: 'region' in e ? e.region : undefined,
    origin: 'origin' in e ? e.origin : undefined,
  };
  if (t) {
    const before = host.slice(0, t.index);
    const after = host.slice(t.index + t[0].length);
    return {
      ...base,
      label: t[1] as 'region' | 'resource',
      match: (h) => {
        if (!h.startsWith(before) || !h.endsWith(after) || h.length <= before.length + after.length) return null;
        const label = h.slice(before.length, h.length - after.length);
        return LABEL.test(label) ? label : null;
      },
      hostFor: (label) => before + label + after,
    };
  }
  if (host.startsWith('*.')) {
    const suffix = host.slice(1);
    return { ...base, match: (h) => (h.endsWith(suffix) ? '' : null) };
  }
  return { ...base, match: (h) => (h === host ? '' : null) };
}

export class DestinationRegistry {
  private readonly rules: Rule[] = [];
  private readonly exact = new Map<string, Rule>();
  private readonly prefixRules = new Map<string, Rule>();
  private readonly byHostCache = new Map<string, Destination>();
  private readonly sanctioned: Set<string>;
  private readonly azureRegions: Record<string, string>;
  private readonly upstreams: Record<string, string>;
  private readonly wildcardUpstreams: Array<[string, string]>;

  constructor(config: Config) {
    this.sanctioned = new Set(config.destinations.sanctioned);
    this.azureRegions = config.destinations.azure_regions;
    this.upstreams = config.upstreams;
    this.wildcardUpstreams = Object.entries(config.upstreams)
      .filter(([h]) => h.startsWith('*.'))
      .map(([h, o]) => [h.slice(1), o]);
    // Operator additions come first so they can take over a catalog host.
    const entries = [...config.destinations.add.map((d) => ({ ...d, tier: 'internal' as const })), ...CATALOG];
    for (const e of entries) {
      const rule = ruleFromTemplate(e);
      if (!e.host.includes('{') && !e.host.startsWith('*.')) {
        if (!this.exact.has(e.host)) this.exact.set(e.host, rule);
      } else {
        this.rules.push(rule);
      }
      if (e.prefix && !this.prefixRules.has(e.prefix)) this.prefixRules.set(e.prefix, rule);
      if (!rule.hostFor) rule.fixedHost = e.host.toLowerCase();
    }
  }

  /** Gateway prefixes as users type them, for the unknown-route error. */
  prefixes(): string[] {
    return [...this.prefixRules.entries()].map(([p, r]) => (r.label ? `/${p}/{${r.label}}/` : `/${p}/`));
  }

  /** Destination for a host name (forward proxy, absolute-form requests). Unknown hosts still resolve. */
  byHost(hostHeader: string): Destination {
    const host = stripPort(hostHeader).toLowerCase();
    const cached = this.byHostCache.get(host);
    if (cached) return cached;
    let rule = this.exact.get(host);
    let label = '';
    if (!rule) {
      for (const r of this.rules) {
        const l = r.match(host);
        if (l !== null) {
          rule = r;
          label = l;
          break;
        }
      }
    }
    const dest = this.build(host, rule, label, hostHeader);
    if (this.byHostCache.size >= MAX_CACHED_HOSTS) this.byHostCache.clear();
    this.byHostCache.set(host, dest);
    return dest;
  }

  /** Resolves a gateway path (`/bedrock/eu-west-1/model/x/converse`); undefined when no prefix matches. */
  route(path: string): GatewayRoute | undefined {
    const end = path.indexOf('/', 1);
    const prefix = end < 0 ? path.slice(1) : path.slice(1, end);
    const rule = this.prefixRules.get(prefix);
    if (!rule) return undefined;
    let rest = end < 0 ? '/' : path.slice(end);
    let host: string;
    if (rule.hostFor) {
      const labelEnd = rest.indexOf('/', 1);
      const label = (labelEnd < 0 ? rest.slice(1) : rest.slice(1, labelEnd)).toLowerCase();
      if (!LABEL.test(label)) return undefined;
      host = rule.hostFor(label);
      rest = labelEnd < 0 ? '/' : rest.slice(labelEnd);
    } else {
      host = rule.fixedHost ?? '';
    }
    return { destination: this.byHost(host), path: rest };
  }

  private build(host: string, rule: Rule | undefined, label: string, hostHeader: string): Destination {
    const port = portOf(hostHeader);
    if (!rule) {
      return {
        host,
        provider: 'unknown',
        format: 'generic',
        jurisdiction: 'unknown',
        sanctioned: false,
        tier: 'unknown',
        shadow: false,
        origin: this.originFor(host, undefined, port),
      };
    }
    let region = rule.region;
    if (rule.label === 'region') region = label;
    if (rule.label === 'resource') region = this.azureRegions[label];
    const jurisdiction = rule.jurisdiction ?? jurisdictionOfRegion(region);
    const sanctioned = this.sanctioned.has(rule.provider);
    return {
      host,
      provider: rule.provider,
      format: rule.format,
      region,
      jurisdiction,
      sanctioned,
      tier: rule.tier,
      shadow: rule.tier === 'long-tail' && !sanctioned,
      origin: this.originFor(host, rule.origin, port),
    };
  }

  private originFor(host: string, ruleOrigin: string | undefined, port: string): string {
    const exact = this.upstreams[host];
    if (exact) return exact;
    for (const [suffix, origin] of this.wildcardUpstreams) if (host.endsWith(suffix)) return origin;
    if (ruleOrigin) return ruleOrigin;
    return port ? `https://${host}:${port}` : `https://${host}`;
  }
}

function stripPort(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const i = hostHeader.lastIndexOf(':');
  return i < 0 ? hostHeader : hostHeader.slice(0, i);
}

function portOf(hostHeader: string): string {
  const i = hostHeader.lastIndexOf(':');
  if (i < 0 || hostHeader.endsWith(']')) return '';
  const p = hostHeader.slice(i + 1);
  return p === '443' ? '' : p;
}
