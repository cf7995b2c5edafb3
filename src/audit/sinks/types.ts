// The contract between the audit writer and a SIEM sink (syslog, HTTP batches).

/** Counters a sink reports on /stats and /metrics. */
export interface SinkStats {
  name: string;
  type: 'syslog' | 'http';
  /** Records waiting in memory. */
  queued: number;
  /** Records that are on disk (in the audit segments) but not yet delivered: the sink fell behind or was down. */
  behind: number;
  delivered: number;
  /** Delivery attempts that failed (each retried with backoff). */
  failures: number;
  /** Highest sequence number the receiver acknowledged. */
  deliveredSeq: number;
  connected: boolean;
  lastError: string | null;
}

/**
 * Fed by the audit writer with records already written to the segment files, in sequence
 * order. A sink must never block or throw into the writer: it queues in memory up to its bound
 * and, beyond it or after a restart, reads what it has not delivered back from the segments.
 */
export interface AuditSink {
  readonly name: string;
  /** Starts delivery, resuming after the last acknowledged record (persisted cursor). */
  start(): Promise<void>;
  /** Records just written: their exact line text (no newline) and the first one's sequence number. The array is kept, not copied: do not reuse it. */
  offer(lines: readonly string[], firstSeq: number): void;
  stats(): SinkStats;
  /** Stops; what is undelivered stays on disk and is sent after the next start. */
  close(): Promise<void>;
}
