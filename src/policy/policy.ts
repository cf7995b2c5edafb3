// The policy engine: turns what an exchange showed (identity and route, destination, findings in request and
// response, inspection failures) into one decision with the rule that fired, a reason a person can act on, and
// the version of the policy in force.

import { createHash } from 'node:crypto';
import type { ContentRuleSpec, PolicyAction, PolicyConfig, ResidencyRuleSpec, RouteSpec } from '../config/schema';
import type { ErrorCode } from '../errors';
import { SEVERITIES, type Severity } from '../detect/categories';
import type { Decision, Exchange, ExchangeFinding } from '../pipeline/exchange';

const STRENGTH: Record<PolicyAction, number> = { allow: 0, alert: 1, redact: 2, block: 3 };

interface ContentRule {
  id: string;
  action: PolicyAction;
  categories: ReadonlySet<string> | null;
  rules: ReadonlySet<string> | null;
  minSeverity: number;
  minConfidence: number;
  routes: ReadonlySet<string> | null;
  request: boolean;
  response: boolean;
}

interface Route {
  name: string;
  subjects: ReadonlySet<string> | null;
  tenants: ReadonlySet<string> | null;
  apps: ReadonlySet<string> | null;
  groups: readonly string[];
  providers: ReadonlySet<string> | null;
  pathPrefixes: readonly string[];
  models: ReadonlySet<string> | null;
  allowProviders: ReadonlySet<string> | null;
  allowModels: ReadonlySet<string> | null;
  allowTools: ReadonlySet<string> | null;
}

interface Candidate {
  action: PolicyAction;
  rule: string;
  reason: string;
  code?: ErrorCode;
}

const set = (list: readonly string[] | undefined): ReadonlySet<string> | null => (list?.length ? new Set(list) : null);

export class Policy {
  /** First 16 hex of SHA-256 over the policy as configured: records name the version that decided. */
  readonly version: string;
  readonly mode: PolicyConfig['mode'];
  private readonly config: PolicyConfig;
  private readonly content: ContentRule[];
  private readonly routes: Route[];
  private readonly residency: ResidencyRuleSpec[];

  constructor(config: PolicyConfig, routes: readonly RouteSpec[] = []) {
    this.config = config;
    this.mode = config.mode;
    this.version = createHash('sha256').update(canonicalJson({ policy: config, routes })).digest('hex').slice(0, 16);
    this.content = config.content.map(compileRule);
    this.routes = routes.map(compileRoute);
    this.residency = config.residency ?? [];
    this.cutsStreams = this.mode === 'enforce' && this.content.some((r) => r.response && r.action === 'block');
  }

  /** Whether some rule can cut a stream: enforce mode and a response rule that blocks. */
  readonly cutsStreams: boolean;

  /** Findings seen while a response streams → the block that ends the stream, or null to let it run. */
  streamVerdict(x: Exchange, found: readonly ExchangeFinding[]): Decision | null {
    if (this.mode !== 'enforce') return null;
    for (const f of found) {
      const rule = this.firstMatch(f, x.route, 'response');
      if (rule?.action === 'block') {
        return { action: 'block', by: 'policy', rule: `content:${rule.id}`, reason: `content rule "${rule.id}" on the response stream: ${describe(f)}`, policyVersion: this.version };
      }
    }
    return null;
  }

  /** The first route whose conditions all hold, else `default`: every exchange gets exactly one. */
  route(x: Exchange): string {
    const id = x.identity;
    const model = x.request?.model;
    for (const r of this.routes) {
      if (r.subjects && !(id && r.subjects.has(id.subject))) continue;
      if (r.tenants && !(id?.tenant && r.tenants.has(id.tenant))) continue;
      if (r.apps && !(id?.app && r.apps.has(id.app))) continue;
      if (r.groups.length && !(id?.groups && id.groups.some((g) => r.groups.includes(g)))) continue;
      if (r.providers && !r.providers.has(x.destination.provider)) continue;
      if (r.pathPrefixes.length && !r.pathPrefixes.some((p) => x.info.path.startsWith(p))) continue;
      if (r.models && !(model && r.models.has(model))) continue;
      return r.name;
    }
    return 'default';
  }

  /** The decision for an exchange whose request has been inspected (or could not be). */
  decide(x: Exchange): Decision {
    let best: Candidate | null = null;
    const consider = (c: Candidate) => {
      if (!best || STRENGTH[c.action] > STRENGTH[best.action]) best = c;
    };

    if (x.identityProblem && this.config.invalid_identity === 'refuse') {
      consider({ action: 'block', rule: 'invalid_identity', reason: `${x.identityProblem} (policy.invalid_identity is refuse)`, code: 'SLUICE_UNAUTHENTICATED' });
    }

    const route = this.routes.find((r) => r.name === x.route);
    if (route && this.config.outside_route !== 'allow') {
      if (route.allowProviders && !route.allowProviders.has(x.destination.provider)) {
        consider({ action: this.config.outside_route, rule: `route:${route.name}`, reason: `route "${route.name}" may not use provider ${x.destination.provider}` });
      }
      const model = x.request?.model;
      if (route.allowModels && model !== undefined && !route.allowModels.has(model)) {
        consider({ action: this.config.outside_route, rule: `route:${route.name}`, reason: `route "${route.name}" may not use model ${model}` });
      }
      const tool = route.allowTools ? x.request?.tools.find((t) => !route.allowTools!.has(t)) : undefined;
      if (tool !== undefined) {
        consider({ action: this.config.outside_route, rule: `route:${route.name}`, reason: `route "${route.name}" may not offer the model tool ${tool}` });
      }
    }

    const failure = x.inspectFailure;
    if (failure) {
      const mode = this.config.on_failure[failure.kind];
      consider({
        action: mode === 'closed' ? 'block' : 'alert',
        rule: `on_failure.${failure.kind}`,
        reason: mode === 'closed'
          ? `the request could not be inspected (${failure.message}) and policy.on_failure.${failure.kind} is closed`
          : `forwarded uninspected: ${failure.message} (policy.on_failure.${failure.kind} is open)`,
      });
    }

    const d = x.destination;
    // Destinations the operator added (destinations.add) are theirs: only catalog AI providers can be unsanctioned.
    if ((d.tier === 'major' || d.tier === 'long-tail') && !d.sanctioned && this.config.unsanctioned !== 'allow') {
      consider({
        action: this.config.unsanctioned,
        rule: 'unsanctioned',
        reason: `${d.provider} (${d.host}) is not a sanctioned provider (destinations.sanctioned)`,
      });
    }

    const jurisdiction = x.identity?.jurisdiction;
    if (jurisdiction) {
      for (const r of this.residency) {
        if (!r.identity_jurisdictions.includes(jurisdiction) || r.allowed_jurisdictions.includes(x.destination.jurisdiction)) continue;
        const hit = (x.requestFindings ?? []).find((f) => !r.categories?.length || r.categories.includes(f.category));
        if (!hit) continue;
        consider({
          action: r.action,
          rule: `residency:${r.id}`,
          reason: `residency rule "${r.id}": ${hit.category} data from a ${jurisdiction} identity to ${x.destination.provider} in ${x.destination.jurisdiction} (allowed: ${r.allowed_jurisdictions.join(', ')})`,
        });
      }
    }

    for (const f of x.requestFindings ?? []) {
      const rule = this.firstMatch(f, x.route, 'request');
      if (!rule || rule.action === 'allow') continue;
      if (rule.action === 'redact' && f.count !== undefined) {
        // A score finding (this text looks like source code) names a region, not a value that can be masked.
        consider({ action: 'block', rule: `content:${rule.id}`, reason: `content rule "${rule.id}" asks to redact ${describe(f)}, which is a whole region and cannot be masked` });
        continue;
      }
      consider({ action: rule.action, rule: `content:${rule.id}`, reason: `content rule "${rule.id}": ${describe(f)}` });
    }

    const c = best as Candidate | null;
    if (!c) return { action: 'allow', by: 'policy', policyVersion: this.version };
    if ((c.action === 'block' || c.action === 'redact') && this.mode === 'monitor') {
      return { action: 'alert', by: 'policy', rule: c.rule, reason: `would ${c.action} (policy.mode is monitor): ${c.reason}`, policyVersion: this.version };
    }
    return { action: c.action, by: 'policy', rule: c.rule, reason: c.reason, policyVersion: this.version, ...(c.code ? { code: c.code } : {}) };
  }

  /** The findings a redact decision masks: those whose first matching rule says redact. */
  redactions(x: Exchange): ExchangeFinding[] {
    return (x.requestFindings ?? []).filter((f) => this.firstMatch(f, x.route, 'request')?.action === 'redact');
  }

  /**
   * Whether a non-streamed response on this route must be held until it has been judged: enforce mode and a
   * rule that could block it (a blocking response rule, or a tools allow-list with outside_route block).
   */
  holdsResponses(route: string): boolean {
    if (this.mode !== 'enforce') return false;
    if (this.content.some((r) => r.response && r.action === 'block' && (!r.routes || r.routes.has(route)))) return true;
    const r = this.routes.find((e) => e.name === route);
    return Boolean(r?.allowTools) && this.config.outside_route === 'block';
  }

  /**
   * What policy says of a response once it has been scanned: tool calls outside the route's allow-list and
   * findings matched by rules `on: [response]`. When the response was `held`, a block stands and the client gets
   * Sluice's error instead; otherwise the client already has it, so a block or redact is recorded as an alert that
   * says so. Null when nothing fired.
   */
  decideResponse(x: Exchange, held = false): Decision | null {
    let best: Candidate | null = null;
    const consider = (c: Candidate) => {
      if (!best || STRENGTH[c.action] > STRENGTH[best.action]) best = c;
    };
    const route = this.routes.find((r) => r.name === x.route);
    if (route?.allowTools && this.config.outside_route !== 'allow') {
      const call = x.response?.toolCalls.find((t) => !route.allowTools!.has(t.name));
      if (call) consider({ action: this.config.outside_route, rule: `route:${route.name}`, reason: `the model called tool ${call.name}, which route "${route.name}" does not allow` });
    }
    for (const f of x.responseFindings ?? []) {
      const rule = this.firstMatch(f, x.route, 'response');
      if (rule && rule.action !== 'allow') consider({ action: rule.action, rule: `content:${rule.id}`, reason: `content rule "${rule.id}" on the response: ${describe(f)}` });
    }
    const c = best as Candidate | null;
    if (!c) return null;
    if (held && this.mode === 'enforce' && c.action === 'block') {
      return { action: 'block', by: 'policy', rule: c.rule, reason: c.reason, policyVersion: this.version };
    }
    const after = c.action === 'block' || c.action === 'redact' ? `would ${c.action}, but the response had already reached the client: ` : '';
    return { action: 'alert', by: 'policy', rule: c.rule, reason: after + c.reason, policyVersion: this.version };
  }

  /** Rules apply in order, like a firewall's: the first that matches a finding decides it, so an allow can carve out an exception. */
  private firstMatch(f: ExchangeFinding, route: string, side: 'request' | 'response'): ContentRule | null {
    const sev = SEVERITIES.indexOf(f.severity);
    for (const r of this.content) {
      if (!r[side]) continue;
      if (r.routes && !r.routes.has(route)) continue;
      if (r.categories && !r.categories.has(f.category)) continue;
      if (r.rules && !r.rules.has(f.rule)) continue;
      if (sev < r.minSeverity || f.confidence < r.minConfidence) continue;
      return r;
    }
    return null;
  }
}

function compileRule(spec: ContentRuleSpec): ContentRule {
  return {
    id: spec.id,
    action: spec.action,
    categories: set(spec.categories),
    rules: set(spec.rules),
    minSeverity: SEVERITIES.indexOf((spec.min_severity ?? 'low') as Severity),
    minConfidence: spec.min_confidence ?? 0,
    routes: set(spec.routes),
    request: !spec.on?.length || spec.on.includes('request'),
    response: spec.on?.includes('response') ?? false,
  };
}

function compileRoute(spec: RouteSpec): Route {
  const m = spec.match ?? ({} as Partial<RouteSpec['match']>);
  const a = spec.allow ?? ({} as Partial<RouteSpec['allow']>);
  return {
    name: spec.name,
    subjects: set(m.subjects),
    tenants: set(m.tenants),
    apps: set(m.apps),
    groups: m.groups ?? [],
    providers: set(m.providers),
    pathPrefixes: m.path_prefixes ?? [],
    models: set(m.models),
    allowProviders: set(a.providers),
    allowModels: set(a.models),
    allowTools: set(a.tools),
  };
}

function describe(f: ExchangeFinding): string {
  return `${f.category} finding ${f.rule} (${f.severity}, confidence ${f.confidence.toFixed(2)}) "${f.masked}" in ${f.role} ${f.path || 'text'}`;
}

/** JSON with keys sorted, so the version does not depend on the order keys were written in. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
