// The few fields of an audit record line that a sink's envelope needs (syslog header, HEC time, bulk _id).
// Sinks run off the request path, so one JSON.parse per record is cheaper than keeping a parser in step with the schema.

export interface RecordFacts {
  seq: number;
  id: string | null;
  type: string | null;
  /** The record's time as written (ISO 8601), when it has one. */
  time: string | null;
  /** The more severe of `policy.decision` and `policy.response.decision` (docs/audit-format.md). */
  decision: string | null;
}

/** Severity order of decisions: a blocked response outranks an allowed request. */
const RANK: Record<string, number> = { allow: 0, redact: 1, alert: 2, block: 3 };

export function recordFacts(line: string, seq: number): RecordFacts {
  let r: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed && typeof parsed === 'object') r = parsed as Record<string, unknown>;
  } catch {
    // A line the writer produced is JSON; anything else still goes out, with only its seq in the envelope.
  }
  const policy = field(r, 'policy');
  let decision = text(policy.decision);
  const onResponse = text(field(policy, 'response').decision);
  if (onResponse !== null && (decision === null || (RANK[onResponse] ?? 0) > (RANK[decision] ?? 0))) decision = onResponse;
  return { seq, id: text(r.id), type: text(r.type), time: text(r.time), decision };
}

function field(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = o[key];
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function text(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}
