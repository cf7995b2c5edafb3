// The policy engine: turns what an exchange showed (destination, findings, inspection failures) into one
// decision with the rule that fired, a reason a person can act on, and the version of the policy in force.

import { createHash } from 'node:crypto';
import type { ContentRuleSpec, PolicyAction, PolicyConfig } from '../config/schema';
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
}

interface Candidate {
  action: PolicyAction;
  rule: string;
  reason: string;
}

export class Policy {
  /** First 16 hex of SHA-256 over the policy as configured: records name the version that decided. */
  readonly version: string;
  readonly mode: PolicyConfig['mode'];
  private readonly config: PolicyConfig;
  private readonly content: ContentRule[];

  constructor(config: PolicyConfig) {
    this.config = config;
    this.mode = config.mode;
    this.version = createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
    this.content = config.content.map(compileRule);
  }

  /** The decision for an exchange whose request has been inspected (or could not be). */
  decide(x: Exchange): Decision {
    let best: Candidate | null = null;
    const consider = (c: Candidate) => {
      if (!best || STRENGTH[c.action] > STRENGTH[best.action]) best = c;
    };

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
    if (d.tier !== 'unknown' && !d.sanctioned && this.config.unsanctioned !== 'allow') {
      consider({
        action: this.config.unsanctioned,
        rule: 'unsanctioned',
        reason: `${d.provider} (${d.host}) is not a sanctioned provider (destinations.sanctioned)`,
      });
    }

    for (const f of x.requestFindings ?? []) {
      const rule = this.firstMatch(f);
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
    return { action: c.action, by: 'policy', rule: c.rule, reason: c.reason, policyVersion: this.version };
  }

  /** The findings a redact decision masks: those whose first matching rule says redact. */
  redactions(x: Exchange): ExchangeFinding[] {
    return (x.requestFindings ?? []).filter((f) => this.firstMatch(f)?.action === 'redact');
  }

  /** Rules apply in order, like a firewall's: the first that matches a finding decides it, so an allow can carve out an exception. */
  private firstMatch(f: ExchangeFinding): ContentRule | null {
    const sev = SEVERITIES.indexOf(f.severity);
    for (const r of this.content) {
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
    categories: spec.categories?.length ? new Set(spec.categories) : null,
    rules: spec.rules?.length ? new Set(spec.rules) : null,
    minSeverity: SEVERITIES.indexOf((spec.min_severity ?? 'low') as Severity),
    minConfidence: spec.min_confidence ?? 0,
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
