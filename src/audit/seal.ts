// Sealing a batch of audit records: each record's head (`{"seq":N,"prev":"<leaf hash of N-1>"`) written into the
// room append() left for it, every leaf hashed in order, and the batch's Merkle root. Done by one worker thread,
// off the event loop; in-line on the calling thread if that worker cannot run.

import { hash } from 'node:crypto';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { merkleRoot } from './merkle';

const HEAD_BEFORE_SEQ = '{"seq":'.length;
const HEAD_AFTER_SEQ = ',"prev":"'.length + 64 + '"'.length;

/** Bytes of a record's head for sequence number `seq`: what append() leaves room for before the record's fields. */
export function headBytes(seq: number): number {
  let digits = 1;
  for (let t = 10; seq >= t; t *= 10) digits++;
  return HEAD_BEFORE_SEQ + digits + HEAD_AFTER_SEQ;
}

export interface SealJob {
  /** The batch's lines, each with its head left unwritten. Shared: the worker writes the heads in place. */
  lines: SharedArrayBuffer;
  /** Where the first line starts in `lines`; there is a byte before it. */
  from: number;
  /** Where each line's newline is in `lines`; the next line starts after it. */
  ends: Int32Array;
  /** The first line's sequence number. */
  firstSeq: number;
  /** The leaf hash (hex) of record `firstSeq - 1`: the first line's `prev`. */
  prev: string;
  /** Leaves of records on disk already that the batch seals too (crash recovery), 32 bytes each, before the lines'. */
  before: Uint8Array;
}

export interface SealResult {
  /** Merkle root over `before` and the lines' leaves, hex. */
  root: string;
  /** The last line's leaf hash, hex: the next batch's `prev`. */
  last: string;
}

/**
 * Writes the heads and hashes the lines, in order. The leaf is SHA-256(0x00 ‖ line), hashed in one call with the
 * byte before the line set to 0x00 and then back to a newline (what it holds, or the spare byte before the first
 * line), so a run cut short can be run again over the same bytes.
 */
export function sealLines(job: SealJob): SealResult {
  const buf = Buffer.from(job.lines);
  const leaves: Buffer[] = [];
  for (let i = 0; i < job.before.length; i += 32) leaves.push(Buffer.from(job.before.subarray(i, i + 32)));
  let prev = job.prev;
  let p = job.from;
  for (let i = 0; i < job.ends.length; i++) {
    const seq = job.firstSeq + i;
    const end = job.ends[i]!;
    if (buf.write(`{"seq":${seq},"prev":"${prev}"`, p, 'latin1') !== headBytes(seq)) throw new Error(`audit record ${seq}: no room for its head`);
    buf[p - 1] = 0;
    const leaf = hash('sha256', buf.subarray(p - 1, end), 'buffer');
    buf[p - 1] = 0x0a;
    leaves.push(leaf);
    prev = leaf.toString('hex');
    p = end + 1;
  }
  return { root: merkleRoot(leaves).toString('hex'), last: prev };
}

const WORKER_FILE = join(__dirname, 'seal-worker.js');

/**
 * The seal worker: one thread, one job at a time (the log chains them, each batch's `prev` being the last leaf of
 * the one before). Started on first use; it keeps the process alive only while it holds a batch. If it fails, the job
 * it held and every later one are sealed in-line: the bytes are shared, so nothing it held is lost.
 */
export class Sealer {
  private worker: Worker | null = null;
  private inline = false;
  private closing = false;
  private current: { job: SealJob; resolve: (r: SealResult) => void; reject: (err: Error) => void } | null = null;
  private readonly onError: (err: Error) => void;

  constructor(onError: (err: Error) => void) {
    this.onError = onError;
  }

  /** Seals one batch; the caller waits for it before handing over the next. */
  seal(job: SealJob): Promise<SealResult> {
    if (this.inline || this.closing) return sealHere(job);
    let w = this.worker;
    if (!w) {
      try {
        w = this.start();
      } catch (err) {
        this.fail(null, err as Error);
        return sealHere(job);
      }
    }
    return new Promise((resolve, reject) => {
      this.current = { job, resolve, reject };
      w.ref(); // a process that only waits for this batch (a CLI flushing before exit) must not end first
      w.postMessage(job);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const w = this.worker;
    this.worker = null;
    await w?.terminate();
  }

  private start(): Worker {
    const w = new Worker(WORKER_FILE);
    w.on('message', (r: SealResult) => {
      w.unref();
      const c = this.current;
      this.current = null;
      c?.resolve(r);
    });
    w.on('error', (err) => this.fail(w, err));
    w.on('exit', (code) => this.fail(w, new Error(`exited with code ${code}`)));
    this.worker = w;
    return w;
  }

  private fail(w: Worker | null, err: Error): void {
    if (this.worker === w) this.worker = null;
    if (!this.closing && !this.inline) {
      this.inline = true;
      this.onError(new Error(`the audit seal worker failed (${err.message}); batches are sealed on the main thread from now on`, { cause: err }));
    }
    const c = this.current;
    this.current = null;
    if (c) sealHere(c.job).then(c.resolve, c.reject);
  }
}

function sealHere(job: SealJob): Promise<SealResult> {
  try {
    return Promise.resolve(sealLines(job));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
