// Alert rules over the signals (signals.alerts): evaluated every few seconds and on a first sighting of an
// unsanctioned destination; each firing is logged, appended to the audit log and POSTed to the webhook.

import { request } from 'undici';
import type { AlertRuleSpec } from '../config/schema';
import { log } from '../log';
import type { Alert, SignalsWindow } from './types';

/** How often rate and latency rules are evaluated. */
export const EVALUATE_MS = 5_000;
const WEBHOOK_TIMEOUT_MS = 5_000;
const RECENT_ALERTS = 100;
/** Rates and p99 need this many exchanges in the window unless the rule says otherwise (one slow call is no tail). */
export const DEFAULT_MIN_REQUESTS = 10;

/** One subject of a rule (a route, a destination, `all`) as measured over the rule's window. */
export interface Measurement {
  subject: string;
  requests: number;
  value: number;
}

export interface MeasureSource {
  measure(rule: AlertRuleSpec, window: SignalsWindow): Measurement[];
}

export interface AlertsStats {
  fired: number;
  webhook: { sent: number; failed: number };
}

export interface AlertsOptions {
  audit: ((json: string) => void) | null;
  webhook: string | null;
  token: string | null;
}

export class Alerts {
  private readonly rules: AlertRuleSpec[];
  private readonly source: MeasureSource;
  private readonly opts: AlertsOptions;
  /** Per rule id, the subjects above threshold at the last evaluation: they do not fire again until they drop below. */
  private readonly firing = new Map<string, Set<string>>();
  private readonly fired: Alert[] = [];
  private readonly counts = { fired: 0, sent: 0, failed: 0 };
  private readonly byRule = new Map<string, { kind: AlertRuleSpec['kind']; count: number }>();
  private readonly deliveries = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout | null;

  constructor(rules: AlertRuleSpec[], source: MeasureSource, opts: AlertsOptions) {
    this.rules = rules;
    this.source = source;
    this.opts = opts;
    const timed = rules.some((r) => r.kind !== 'new_unsanctioned');
    this.timer = timed ? setInterval(() => this.tick(), EVALUATE_MS).unref() : null;
  }

  /** Evaluates the rate and latency rules now (the timer calls this; so may tests). */
  evaluate(): void {
    for (const rule of this.rules) {
      if (rule.kind === 'new_unsanctioned') continue;
      const window = rule.window ?? '5m';
      const min = rule.min_requests ?? DEFAULT_MIN_REQUESTS;
      const threshold = rule.threshold!;
      const before = this.firing.get(rule.id);
      const now = new Set<string>();
      for (const m of this.source.measure(rule, window)) {
        if (m.requests < min || m.value <= threshold) continue;
        now.add(m.subject);
        if (!before?.has(m.subject)) this.fire(rule, m.subject, m.value, threshold, describe(rule, m, window));
      }
      this.firing.set(rule.id, now);
    }
  }

  private tick(): void {
    try {
      this.evaluate();
    } catch (err) {
      // A bug in a rule costs that evaluation, not the process.
      log('error', 'alert evaluation failed', { error: (err as Error).message });
    }
  }

  /** The first exchange to an unsanctioned or shadow host since start. */
  newUnsanctioned(host: string, provider: string, shadow: boolean): void {
    for (const rule of this.rules) {
      if (rule.kind !== 'new_unsanctioned') continue;
      const what = shadow ? 'shadow AI destination' : 'unsanctioned AI provider';
      this.fire(rule, host, 1, 0, `first exchange to ${what} ${host} (${provider}) since start`);
    }
  }

  /** Alerts fired at or after `since` (epoch ms), most recent first. */
  recent(since: number): Alert[] {
    const out: Alert[] = [];
    for (let i = this.fired.length - 1; i >= 0; i--) {
      const a = this.fired[i]!;
      if (Date.parse(a.time) < since) break;
      out.push(a);
    }
    return out;
  }

  /** Alerts fired since start per rule id, for /metrics. */
  firedByRule(): ReadonlyMap<string, { kind: AlertRuleSpec['kind']; count: number }> {
    return this.byRule;
  }

  stats(): AlertsStats {
    return { fired: this.counts.fired, webhook: { sent: this.counts.sent, failed: this.counts.failed } };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.deliveries]);
  }

  private fire(rule: AlertRuleSpec, subject: string, value: number, threshold: number, message: string): void {
    const alert: Alert = { time: new Date().toISOString(), rule: rule.id, kind: rule.kind, message, subject, value, threshold };
    this.counts.fired++;
    const n = this.byRule.get(rule.id);
    if (n) n.count++;
    else this.byRule.set(rule.id, { kind: rule.kind, count: 1 });
    this.fired.push(alert);
    if (this.fired.length > RECENT_ALERTS) this.fired.shift();
    const window = rule.kind === 'new_unsanctioned' ? null : (rule.window ?? '5m');
    log('warn', 'alert', { ...alert, window });
    if (this.opts.audit) {
      try {
        this.opts.audit(JSON.stringify({ v: 1, type: 'alert', ...alert, window }));
      } catch (err) {
        log('error', 'alert not recorded in the audit log', { rule: rule.id, error: (err as Error).message });
      }
    }
    if (this.opts.webhook) {
      const p = this.post(this.opts.webhook, JSON.stringify({ ...alert, window, source: 'sluice' }));
      this.deliveries.add(p);
      void p.finally(() => this.deliveries.delete(p));
    }
  }

  /** Never throws: a webhook that is down costs a log line and a count, not an exchange. */
  private async post(url: string, body: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    try {
      const res = await request(url, { method: 'POST', headers, body, headersTimeout: WEBHOOK_TIMEOUT_MS, bodyTimeout: WEBHOOK_TIMEOUT_MS });
      await res.body.dump();
      if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
      this.counts.sent++;
    } catch (err) {
      this.counts.failed++;
      log('warn', 'alert webhook failed', { url, error: (err as Error).message });
    }
  }
}

function describe(rule: AlertRuleSpec, m: Measurement, window: SignalsWindow): string {
  const pct = (v: number) => `${Math.round(v * 1000) / 10}%`;
  switch (rule.kind) {
    case 'pii_rate':
      return `PII in ${pct(m.value)} of route ${m.subject} exchanges over ${window} (threshold ${pct(rule.threshold!)}, ${m.requests} exchanges)`;
    case 'failure_rate':
      return `${pct(m.value)} of exchanges to ${m.subject} failed over ${window} (threshold ${pct(rule.threshold!)}, ${m.requests} exchanges)`;
    case 'p99_widening':
      return `p99 latency ${m.subject === 'all' ? 'over all destinations' : `to ${m.subject}`} over ${window} is ${m.value}× its ${window === '1h' ? 'since-start' : 'last hour'} value (threshold ${rule.threshold}×, ${m.requests} exchanges)`;
    default:
      return `p99 latency ${m.value} ms ${m.subject === 'all' ? 'over all destinations' : `to ${m.subject}`} over ${window} (threshold ${rule.threshold} ms, ${m.requests} exchanges)`;
  }
}
