// The audit stage: every completed exchange, of every front door and outcome, becomes one record in the
// signed log. When the log cannot be written, audit.on_write_error decides: closed refuses new requests, open alerts.

import type { FailMode } from '../config/schema';
import { log } from '../log';
import type { Exchange } from '../pipeline/exchange';
import type { Stage } from '../pipeline/pipeline';
import type { AuditLog } from './log';
import { overheadMs } from '../signals/definitions';
import { exchangeRecord, type RecordOptions } from './record';

export interface AuditStageStats {
  records: number;
  /** Exchanges whose record could not be appended (the log had failed and refused it). */
  lost: number;
  /** Requests refused because the log could not be written (on_write_error: closed). */
  refused: number;
  healthy: boolean;
}

export class AuditStage implements Stage {
  readonly name = 'audit';
  private readonly audit: AuditLog;
  private readonly opts: RecordOptions;
  private readonly onWriteError: FailMode;
  private readonly counts = { records: 0, lost: 0, refused: 0 };

  constructor(audit: AuditLog, opts: RecordOptions & { onWriteError: FailMode }) {
    this.audit = audit;
    this.opts = { capture: opts.capture, digestKey: opts.digestKey, homeJurisdiction: opts.homeJurisdiction };
    this.onWriteError = opts.onWriteError;
  }

  /** Closed: an exchange that could not be recorded must not happen, so it is refused before anything leaves. */
  requestHead(x: Exchange): void {
    if (this.onWriteError === 'closed' && !this.audit.healthy) {
      this.counts.refused++;
      x.decision = {
        action: 'block',
        by: 'audit',
        rule: 'audit.on_write_error',
        reason: 'the audit log cannot be written and audit.on_write_error is closed; see the Sluice log for the disk error',
        code: 'SLUICE_AUDIT_WRITE',
      };
    }
  }

  complete(x: Exchange): void {
    // The response scan (and policy's verdict on it) finishes after the last byte; the record waits for both. The
    // overhead is what the client waited for, so it is taken now, before the response scan adds to inspectMs.
    const overhead = overheadMs(x.ownMs, x.inspectMs);
    if (x.responseInspection) x.responseInspection.then(() => this.append(x, overhead), () => this.append(x, overhead));
    else this.append(x, overhead);
  }

  private append(x: Exchange, overhead: number): void {
    try {
      this.audit.append(exchangeRecord(x, this.opts, overhead));
      this.counts.records++;
    } catch (err) {
      this.counts.lost++;
      log('error', 'audit record not written', { exchange: x.id, error: (err as Error).message });
    }
  }

  stats(): AuditStageStats {
    return { ...this.counts, healthy: this.audit.healthy };
  }
}
