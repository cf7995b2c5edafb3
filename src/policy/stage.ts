// The policy stage: decides every exchange once its request has been inspected, and stamps the policy version
// on those that ended before (refused, failed) so every record says which policy was in force.

import type { Exchange } from '../pipeline/exchange';
import type { Stage } from '../pipeline/pipeline';
import type { Policy } from './policy';

export interface PolicyStats {
  version: string;
  mode: string;
  decisions: { allow: number; alert: number; block: number };
  /** Inspection failures by kind, and whether each was let through (open) or blocked (closed). */
  failures: Record<string, { open: number; closed: number }>;
}

export class PolicyStage implements Stage {
  readonly name = 'policy';
  private readonly policy: Policy;
  private readonly decisions = { allow: 0, alert: 0, block: 0 };
  private readonly failures: PolicyStats['failures'] = {};

  constructor(policy: Policy) {
    this.policy = policy;
  }

  requestBody(x: Exchange): void {
    // Another stage's block stands; policy adds its own reasons only where nothing blocked yet.
    if (x.decision.action === 'block') return;
    const d = this.policy.decide(x);
    x.decision = d;
    if (d.action !== 'redact') this.decisions[d.action]++;
    const f = x.inspectFailure;
    if (f) (this.failures[f.kind] ??= { open: 0, closed: 0 })[d.action === 'block' && d.rule === `on_failure.${f.kind}` ? 'closed' : 'open']++;
  }

  complete(x: Exchange): void {
    if (!x.decision.policyVersion) x.decision = { ...x.decision, policyVersion: this.policy.version };
  }

  stats(): PolicyStats {
    return { version: this.policy.version, mode: this.policy.mode, decisions: { ...this.decisions }, failures: structuredClone(this.failures) };
  }
}
