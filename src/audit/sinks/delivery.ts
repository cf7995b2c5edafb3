// The delivery core every SIEM sink shares: a bounded live queue, batches, retries with backoff and jitter, a
// persisted cursor, and catch-up from the audit segments (the durable spill) when the sink fell behind.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SluiceError } from '../../errors';
import { log } from '../../log';
import { RECORD_PREFIX, listSegments, readSegmentLines, segmentPath, type SegmentName } from '../segments';
import type { AuditSink, SinkStats } from './types';

/** Records in sequence order: `seqs[i]` is the sequence number of `lines[i]`. */
export interface Batch {
  seqs: number[];
  lines: string[];
}

/** How one kind of receiver is spoken to; queueing, retries and the cursor stay in the core. */
export interface Transport {
  readonly connected: boolean;
  /**
   * Sends `batch`. Resolves with the batches the receiver now holds for sure, oldest first: this one, or earlier
   * ones a stream transport could only confirm now (then this one later). Rejects to have `batch` retried.
   */
  send(batch: Batch): Promise<Batch[]>;
  /** Called when the queue runs dry after a send that left its batch unconfirmed: confirms the rest, or rejects to retry. */
  settle(): Promise<Batch[]>;
  /** Aborts what is in flight; anything unconfirmed is sent again after the next start. */
  close(): Promise<void>;
}

export interface DeliveryOptions {
  name: string;
  type: SinkStats['type'];
  auditDir: string;
  /** `<data_dir>/sinks/<name>.cursor`: the highest sequence number the receiver acknowledged. */
  cursorFile: string;
  queueRecords: number;
  batchRecords: number;
  maxBackoffMs: number;
}

const FIRST_BACKOFF_MS = 100;
/** The cursor trails acknowledgements by at most this much; a crash costs that many duplicates, never a loss. */
const CURSOR_EVERY_MS = 1000;
/** Catch-up reads the segments a page at a time, so a sink far behind holds one page, not a segment. */
const PAGE_BYTES = 1 << 20;

interface Chunk {
  lines: readonly string[];
  firstSeq: number;
}

type Attempt<T> = { value: T } | null;

/**
 * The writer offers records only once they are on disk, so the segments hold whatever the queue lets go: on
 * overflow, on a gap, or after a restart the sink reads on from the segments (after the last record it sent, or
 * after the cursor), and returns to the live queue once it has caught up. Nothing here blocks or throws into the
 * writer; a record counts as delivered only when the transport says the receiver has it.
 */
export class DeliveryCore implements AuditSink {
  readonly name: string;
  readonly #opts: DeliveryOptions;
  readonly #transport: Transport;
  readonly #reader: SegmentReader;

  /** The live queue: chunks as offered, consumed from `#chunkPos` of the first. */
  #chunks: Chunk[] = [];
  #chunkPos = 0;
  #queued = 0;
  /** Records after `#sentSeq` are read from the segments, not the queue (which is empty meanwhile). */
  #behind = true;
  /** Highest sequence number known to be on disk: offered by the writer, or read back by the catch-up. */
  #onDiskSeq = 0;
  /** Highest sequence number the transport took (confirmed or not). */
  #sentSeq = 0;
  /** Highest sequence number the receiver confirmed; what the cursor file says, CURSOR_EVERY_MS later. */
  #ackedSeq = 0;
  /** The last send left a batch unconfirmed (stream transports confirm a batch only once the connection outlived it). */
  #unsettled = false;

  #delivered = 0;
  #failures = 0;
  #lastError: string | null = null;
  /** The error last logged, so a receiver that stays down is logged once, not once per retry. */
  #loggedError: string | null = null;

  #started = false;
  #closing = false;
  #running: Promise<void> = Promise.resolve();
  #closed: Promise<void> | null = null;
  #wakeIdle: (() => void) | null = null;
  #wakeSleep: (() => void) | null = null;

  #persistedSeq = 0;
  #cursorTimer: NodeJS.Timeout | null = null;
  #cursorWrites: Promise<void> = Promise.resolve();

  constructor(opts: DeliveryOptions, transport: Transport) {
    this.name = opts.name;
    this.#opts = opts;
    this.#transport = transport;
    this.#reader = new SegmentReader(opts.auditDir);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    let cursor: number;
    try {
      await mkdir(dirname(this.#opts.cursorFile), { recursive: true });
      cursor = await this.#readCursor();
    } catch (err) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `audit sink ${this.name}: cannot use its cursor file ${this.#opts.cursorFile}: ${(err as Error).message}; data_dir must be writable`, { cause: err });
    }
    this.#sentSeq = this.#ackedSeq = this.#persistedSeq = cursor;
    this.#onDiskSeq = Math.max(this.#onDiskSeq, cursor);
    this.#running = this.#run();
  }

  /** O(1): keeps `lines` by reference, or only notes the sequence number when the sink reads from the segments. */
  offer(lines: readonly string[], firstSeq: number): void {
    if (this.#closing || lines.length === 0) return;
    const lastSeq = firstSeq + lines.length - 1;
    if (lastSeq <= this.#onDiskSeq) return; // already read from the segments while catching up
    const gap = firstSeq > this.#onDiskSeq + 1;
    this.#onDiskSeq = lastSeq;
    if (this.#behind) return;
    if (gap || this.#queued + lines.length > this.#opts.queueRecords) {
      this.#fallBehind();
      return;
    }
    this.#chunks.push({ lines, firstSeq });
    this.#queued += lines.length;
    this.#wakeIdle?.();
  }

  stats(): SinkStats {
    return {
      name: this.name,
      type: this.#opts.type,
      queued: this.#queued,
      behind: this.#behind ? Math.max(0, this.#onDiskSeq - this.#sentSeq) : 0,
      delivered: this.#delivered,
      failures: this.#failures,
      deliveredSeq: this.#ackedSeq,
      connected: this.#transport.connected,
      lastError: this.#lastError,
    };
  }

  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#wakeIdle?.();
    this.#wakeSleep?.();
    await this.#transport.close();
    await this.#running;
    if (this.#cursorTimer) clearTimeout(this.#cursorTimer);
    this.#cursorTimer = null;
    await this.#persistCursor();
  }

  async #run(): Promise<void> {
    // After an empty catch-up read that left offered records unread, one more read: the writer may have rotated
    // between the reader's listing and its offer.
    let lookedAgain = false;
    while (!this.#closing) {
      const read = this.#behind ? await this.#attempt(() => this.#reader.read(this.#sentSeq, this.#opts.batchRecords)) : { value: this.#takeQueued() };
      if (!read) break;
      const batch = read.value;
      if (batch.seqs.length === 0) {
        if (this.#behind) {
          if (this.#sentSeq < this.#onDiskSeq && !lookedAgain) {
            lookedAgain = true;
            continue;
          }
          if (this.#sentSeq < this.#onDiskSeq) {
            log('warn', 'audit sink: offered records are not in the segment files; skipping them', {
              sink: this.name,
              from_seq: this.#sentSeq + 1,
              to_seq: this.#onDiskSeq,
              audit_dir: this.#opts.auditDir,
            });
          }
          lookedAgain = false;
          this.#behind = false;
          this.#onDiskSeq = Math.max(this.#onDiskSeq, this.#sentSeq);
          continue;
        }
        if (this.#unsettled) {
          const settled = await this.#attempt(() => this.#transport.settle());
          if (!settled) break;
          for (const b of settled.value) this.#acknowledge(b);
          this.#unsettled = false;
          continue;
        }
        await new Promise<void>((resolve) => (this.#wakeIdle = resolve));
        this.#wakeIdle = null;
        continue;
      }
      lookedAgain = false;
      const lastSeq = batch.seqs[batch.seqs.length - 1]!;
      this.#onDiskSeq = Math.max(this.#onDiskSeq, lastSeq);
      if (batch.seqs[0]! > this.#sentSeq + 1) {
        log('warn', 'audit sink: records missing from the segments were skipped (pruned before delivery?)', {
          sink: this.name,
          from_seq: this.#sentSeq + 1,
          to_seq: batch.seqs[0]! - 1,
        });
      }
      const sent = await this.#attempt(() => this.#transport.send(batch));
      if (!sent) break;
      for (const b of sent.value) this.#acknowledge(b);
      this.#sentSeq = lastSeq;
      this.#unsettled = !sent.value.includes(batch);
    }
  }

  #fallBehind(): void {
    this.#behind = true;
    this.#chunks = [];
    this.#chunkPos = 0;
    this.#queued = 0;
    this.#wakeIdle?.();
  }

  #takeQueued(): Batch {
    const batch: Batch = { seqs: [], lines: [] };
    while (batch.seqs.length < this.#opts.batchRecords && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const seq = chunk.firstSeq + this.#chunkPos;
      // An offer can overlap records the catch-up already read.
      if (seq > this.#sentSeq) {
        batch.seqs.push(seq);
        batch.lines.push(chunk.lines[this.#chunkPos]!);
      }
      this.#queued--;
      if (++this.#chunkPos === chunk.lines.length) {
        this.#chunks.shift();
        this.#chunkPos = 0;
      }
    }
    return batch;
  }

  /** Runs `fn` until it succeeds, with exponential backoff and jitter between failures; null once closing. */
  async #attempt<T>(fn: () => Promise<T>): Promise<Attempt<T>> {
    for (let n = 0; !this.#closing; n++) {
      try {
        const value = await fn();
        if (this.#loggedError !== null) {
          log('info', 'audit sink delivering again', { sink: this.name, delivered_seq: this.#ackedSeq });
          this.#loggedError = null;
        }
        return { value };
      } catch (err) {
        if (this.#closing) break;
        this.#failures++;
        const message = (err as Error).message;
        this.#lastError = message;
        const delay = backoff(n, this.#opts.maxBackoffMs);
        if (message !== this.#loggedError) {
          log('warn', 'audit sink delivery failed; retrying, records stay on disk meanwhile', {
            sink: this.name,
            error: message,
            retry_in_ms: Math.round(delay),
            delivered_seq: this.#ackedSeq,
          });
          this.#loggedError = message;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wakeSleep = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wakeSleep = null;
      }
    }
    return null;
  }

  /** Counts a batch the transport confirmed and schedules the cursor write. */
  #acknowledge(batch: Batch): void {
    if (batch.seqs.length === 0) return;
    const last = batch.seqs[batch.seqs.length - 1]!;
    if (last <= this.#ackedSeq) return;
    this.#delivered += batch.seqs.length;
    this.#ackedSeq = last;
    this.#cursorTimer ??= setTimeout(() => {
      this.#cursorTimer = null;
      void this.#persistCursor();
    }, CURSOR_EVERY_MS).unref();
  }

  async #readCursor(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.#opts.cursorFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    const seq = Number(text.trim());
    if (Number.isSafeInteger(seq) && seq >= 0) return seq;
    // At least once: an unreadable cursor means sending everything the segments hold again, not skipping any.
    log('warn', 'audit sink cursor is not a sequence number; delivering from the oldest segment', {
      sink: this.name,
      cursor_file: this.#opts.cursorFile,
    });
    return 0;
  }

  /** Writes the cursor atomically (temp file + rename); writes are serialised so an older one never lands last. */
  #persistCursor(): Promise<void> {
    this.#cursorWrites = this.#cursorWrites.then(async () => {
      const seq = this.#ackedSeq;
      if (seq === this.#persistedSeq) return;
      const tmp = `${this.#opts.cursorFile}.tmp`;
      try {
        await writeFile(tmp, `${seq}\n`);
        await rename(tmp, this.#opts.cursorFile);
        this.#persistedSeq = seq;
      } catch (err) {
        log('warn', 'audit sink cannot write its cursor; a restart will resend more', {
          sink: this.name,
          cursor_file: this.#opts.cursorFile,
          error: (err as Error).message,
        });
      }
    });
    return this.#cursorWrites;
  }
}

/** Full exponential growth up to the ceiling, then a random point in its upper half, so retries of many sinks spread out. */
function backoff(attempt: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, FIRST_BACKOFF_MS * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

/** The sequence number of a record line, or null for a checkpoint (or anything else). */
function recordSeq(line: string): number | null {
  if (!line.startsWith(RECORD_PREFIX)) return null;
  let seq = 0;
  let i = RECORD_PREFIX.length;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    seq = seq * 10 + c;
  }
  return i > RECORD_PREFIX.length ? seq : null;
}

/** Pages records with a sequence number above a given one out of the segment files, in order. */
class SegmentReader {
  readonly #dir: string;
  #segment: SegmentName | null = null;
  #offset = 0;
  /** The position above is where reading goes on after this sequence number. */
  #afterSeq = -1;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Up to `max` records after `after`; an empty batch when the segments hold none yet. */
  async read(after: number, max: number): Promise<Batch> {
    if (after !== this.#afterSeq || this.#segment === null) await this.#seek(after);
    const batch: Batch = { seqs: [], lines: [] };
    let last = after;
    let sawNext = false;
    while (this.#segment && batch.seqs.length < max) {
      let page: Awaited<ReturnType<typeof readSegmentLines>>;
      try {
        page = await readSegmentLines(segmentPath(this.#dir, this.#segment), this.#offset, PAGE_BYTES);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // Retention removed the segment under us: find where `last` continues now.
        await this.#seek(last);
        continue;
      }
      let i = 0;
      for (; i < page.lines.length && batch.seqs.length < max; i++) {
        const seq = recordSeq(page.lines[i]!.text);
        if (seq === null || seq <= last) continue;
        batch.seqs.push(seq);
        batch.lines.push(page.lines[i]!.text);
        last = seq;
      }
      this.#offset = i < page.lines.length ? page.lines[i]!.offset : page.end;
      if (page.lines.length > 0) continue;
      // Nothing complete left here. A later segment means this one is finished, but only once it has been read
      // again after the later one was seen: the writer may have appended its last lines just before rotating.
      if (sawNext) {
        this.#segment = await this.#following(this.#segment);
        this.#offset = 0;
        sawNext = false;
        continue;
      }
      if (!(await this.#following(this.#segment))) break;
      sawNext = true;
    }
    this.#afterSeq = last;
    return batch;
  }

  /** Positions at the start of the segment holding `after + 1` (or the oldest, when retention removed that one). */
  async #seek(after: number): Promise<void> {
    const segments = await listSegments(this.#dir);
    let at: SegmentName | null = segments[0] ?? null;
    for (const s of segments) if (s.firstSeq <= after + 1) at = s;
    this.#segment = at;
    this.#offset = 0;
    this.#afterSeq = after;
  }

  async #following(segment: SegmentName): Promise<SegmentName | null> {
    const segments = await listSegments(this.#dir);
    return segments.find((s) => s.file > segment.file) ?? null;
  }
}
