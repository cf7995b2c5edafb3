// The policy stage: routes and decides every exchange once its request has been inspected (redacting the body
// when told to), watches streams a response rule may cut, judges the response after it, and stamps the policy
// version on every exchange, refused and failed ones included, so each record says which policy was in force.

import type { Decision, Exchange } from '../pipeline/exchange';
import type { Stage } from '../pipeline/pipeline';
import type { Policy } from './policy';
import { redactBody } from './redact';
import { StreamScan, type Scanner } from './stream';

export interface PolicyStats {
  version: string;
  mode: string;
  decisions: { allow: number; alert: number; redact: number; block: number };
  /** Inspection failures by kind, and whether each was let through (open) or blocked (closed). */
  failures: Record<string, { open: number; closed: number }>;
}

export class PolicyStage implements Stage {
  readonly name = 'policy';
  private policy: Policy;
  /** Scans response text while it streams, when a policy rule can cut streams; absent without detection. */
  private readonly scanner: Scanner | undefined;
  private readonly streams = new WeakMap<Exchange, StreamScan>();
  /** The policy each exchange started under: a reload mid-exchange does not change its rules. */
  private readonly bound = new WeakMap<Exchange, Policy>();
  private readonly decisions = { allow: 0, alert: 0, redact: 0, block: 0 };
  private readonly failures: PolicyStats['failures'] = {};

  constructor(policy: Policy, scanner?: Scanner) {
    this.policy = policy;
    this.scanner = scanner;
  }

  /** The policy in force from now on; exchanges already started finish under theirs. */
  swap(policy: Policy): void {
    this.policy = policy;
  }

  get version(): string {
    return this.policy.version;
  }

  requestHead(x: Exchange): void {
    this.bound.set(x, this.policy);
  }

  requestBody(x: Exchange, body: Buffer): void {
    const policy = this.bound.get(x) ?? this.policy;
    x.route = policy.route(x);
    // Another stage's block stands; policy adds its own reasons only where nothing blocked yet.
    if (x.decision.action === 'block') return;
    let d = policy.decide(x);
    if (d.action === 'redact') d = this.redact(policy, x, body, d);
    x.decision = d;
    this.decisions[d.action]++;
    if (d.action !== 'block' && this.scanner) {
      if (x.request?.stream) {
        if (policy.cutsStreams) this.watchStream(policy, x, this.scanner);
      } else if (policy.holdsResponses(x.route)) x.holdResponse = true;
    }
    const f = x.inspectFailure;
    if (f) (this.failures[f.kind] ??= { open: 0, closed: 0 })[d.action === 'block' && d.rule === `on_failure.${f.kind}` ? 'closed' : 'open']++;
  }

  /** Masks the findings in the body that goes upstream; a body that cannot be rewritten is blocked instead. */
  private redact(policy: Policy, x: Exchange, body: Buffer, d: Decision): Decision {
    const fail = (why: string): Decision => ({ ...d, action: 'block', reason: `${d.reason}; redaction was required but ${why}` });
    if (x.requestEncoding && x.requestEncoding !== 'identity') return fail(`the body is ${x.requestEncoding}-encoded`);
    // SigV4 signs a hash of the body: a rewritten body would be refused by the provider, so it never leaves.
    if (x.authScheme === 'aws4-hmac-sha256') return fail('the request is AWS SigV4-signed over its body, which a rewrite would invalidate');
    const r = redactBody(body, policy.redactions(x));
    if (!r.ok) return fail(r.why);
    x.rewrittenBody = r.body;
    return { ...d, reason: `${d.reason} (${r.masked} value${r.masked === 1 ? '' : 's'} masked before forwarding)` };
  }

  /** Installed before the response starts, so the adapter hands over text deltas as it reassembles them. */
  private watchStream(policy: Policy, x: Exchange, scanner: Scanner): void {
    const scan = new StreamScan(scanner, (found) => {
      const d = policy.streamVerdict(x, found);
      if (!d) return;
      scan.stop();
      x.responseDecision = d;
      this.decisions.block++;
      x.interrupt?.(d.code ?? 'SLUICE_BLOCKED', `blocked by Sluice policy: ${d.reason} (reference ${x.id})`);
    });
    this.streams.set(x, scan);
    x.onResponseText = scan.text;
  }

  /** A held response, parsed and scanned: judged before the client sees any of it. */
  responseEnd(x: Exchange): void {
    const policy = this.bound.get(x) ?? this.policy;
    const d = policy.decideResponse(x, true);
    if (!d) return;
    x.responseDecision = d;
    if (d.action === 'block') this.decisions.block++;
  }

  complete(x: Exchange): void {
    this.streams.get(x)?.stop();
    this.streams.delete(x);
    x.onResponseText = null;
    if (!x.decision.policyVersion) x.decision = { ...x.decision, policyVersion: this.policy.version };
    const policy = this.bound.get(x) ?? this.policy;
    this.bound.delete(x);
    if (!x.response) return;
    const judge = () => {
      // A block that cut the stream stands; otherwise the whole response is judged now.
      x.responseDecision ??= policy.decideResponse(x);
    };
    // The response scan (detect stage) may still run; judge once it has, so records carry both.
    if (x.responseInspection) x.responseInspection = x.responseInspection.then(judge);
    else judge();
  }

  stats(): PolicyStats {
    return { version: this.policy.version, mode: this.policy.mode, decisions: { ...this.decisions }, failures: structuredClone(this.failures) };
  }
}
