// Scans a log's segments chunk by chunk on the main thread and a few worker threads at once (one SHA-256 per record
// is most of verify's cost), and hands the results back in file order for the verifier to stitch together.
//
// The main thread scans too: it starts at once, while the workers are still starting (~30–100 ms each here), and
// between its chunks it checks the results in order. Scanners run at most a few chunks ahead of the verifier, so
// memory stays bounded by the chunk size whatever the size of the log.

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SluiceError } from '../errors';
import { scanChunk, type ChunkScan, type ChunkTask } from './verify-scan';

const WORKER_FILE = join(__dirname, 'verify-worker.js');

/** Nominal chunk size: a segment (64 MiB at most by default) is cut into pieces about this large. */
export const CHUNK_BYTES = 8 << 20;

/**
 * Logs with fewer segment bytes than this are verified on the main thread alone. bench/audit.ts sizes on the
 * 2-vCPU VM: starting a worker costs more than it saves below ~32 MiB (about 100 ms of hashing at ~300 MB/s).
 */
export const PARALLEL_MIN_BYTES = 32 << 20;

/** Worker threads beside the main thread, at most: beyond that, more chunks in flight cost memory, not time. */
const MAX_THREADS = 7;

/** @internal A worker's answer to one ChunkTask. */
export type WorkerReply = { scan: ChunkScan } | { error: string };

/** Worker threads worth starting for `bytes` of segments: none on one core or for a small log. */
export function defaultThreads(bytes: number): number {
  return bytes < PARALLEL_MIN_BYTES ? 0 : Math.min(MAX_THREADS, availableParallelism() - 1);
}

/** Cuts each segment into chunks of about `chunkBytes`; the last chunk of each reads to the end of the file. */
export function planChunks(segments: ReadonlyArray<{ path: string; size: number }>, chunkBytes: number): ChunkTask[][] {
  return segments.map(({ path, size }) => {
    const n = Math.max(1, Math.ceil(size / chunkBytes));
    return Array.from({ length: n }, (_, k) => ({ path, from: Math.floor((k * size) / n), to: k === n - 1 ? Infinity : Math.floor(((k + 1) * size) / n) }));
  });
}

function unreadable(task: ChunkTask, message: string, cause?: unknown): SluiceError {
  return new SluiceError('SLUICE_AUDIT_UNREADABLE', `cannot read ${task.path}: ${message}`, { cause });
}

export interface ScanOptions {
  /** Worker threads to start (no more than there are chunks for). */
  threads: number;
  /** Whether the main thread scans chunks too; false leaves them all to the workers (tests of the worker path). */
  mainThread?: boolean;
}

/** Scans `tasks` on the main thread and worker threads; `next()` returns the scans in task order. */
export class ChunkScanner {
  private readonly tasks: readonly ChunkTask[];
  private readonly results: Array<Promise<ChunkScan> | undefined>;
  private readonly settle: Array<{ resolve: (s: ChunkScan) => void; reject: (e: Error) => void } | undefined>;
  /** Tasks handed out may run this far ahead of the one the verifier waits for. */
  private readonly ahead: number;
  private taken = 0;
  private consumed = 0;
  private waiting: Array<() => void> = [];
  private closed = false;
  private readonly workers: Worker[] = [];
  private readonly loops: Array<Promise<void>> = [];

  constructor(tasks: readonly ChunkTask[], opts: ScanOptions) {
    this.tasks = tasks;
    this.settle = [];
    this.results = tasks.map((_, k) => {
      const p = new Promise<ChunkScan>((resolve, reject) => (this.settle[k] = { resolve, reject }));
      p.catch(() => {}); // failures surface when the verifier reaches the chunk, or not at all after an early stop
      return p;
    });
    const onMain = opts.mainThread !== false || opts.threads === 0;
    const threads = Math.min(opts.threads, onMain ? tasks.length - 1 : tasks.length);
    // Slack beyond one chunk per scanner: a worker's first chunks run cold (2–3x slower until its JIT has warmed
    // up), and the other scanners should not stall behind them.
    this.ahead = threads + 5;
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_FILE);
      this.workers.push(w);
      this.loops.push(this.workerLoop(w));
    }
    if (onMain) this.loops.push(this.mainLoop());
  }

  /** The scan of the next chunk in task order. */
  async next(): Promise<ChunkScan> {
    const k = this.consumed;
    const scan = await this.results[k]!;
    this.results[k] = undefined;
    this.consumed++;
    this.wake();
    return scan;
  }

  /** Stops handing out chunks, waits for the main thread's chunk in progress and stops the workers. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake();
    await Promise.all(this.workers.map((w) => w.terminate()));
    await Promise.all(this.loops);
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }

  /** The next task's index, once it is within `ahead` of the verifier; -1 when there are none left. */
  private async take(): Promise<number> {
    while (!this.closed && this.taken < this.tasks.length && this.taken >= this.consumed + this.ahead) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    return this.closed || this.taken >= this.tasks.length ? -1 : this.taken++;
  }

  private done(k: number, scan: ChunkScan | Error): void {
    const s = this.settle[k]!;
    this.settle[k] = undefined;
    if (scan instanceof Error) s.reject(scan);
    else s.resolve(scan);
  }

  private async mainLoop(): Promise<void> {
    for (let k: number; (k = await this.take()) >= 0; ) {
      const task = this.tasks[k]!;
      this.done(k, await scanChunk(task).catch((err: unknown) => unreadable(task, (err as Error).message, err)));
    }
  }

  private async workerLoop(w: Worker): Promise<void> {
    let failure: Error | null = null;
    let reply: ((r: WorkerReply | Error) => void) | null = null;
    const fail = (err: Error) => {
      failure ??= err;
      reply?.(failure);
    };
    w.on('message', (m: WorkerReply) => reply?.(m));
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
    // Chunks are taken once the thread runs, not queued while it starts: the main thread may do them meanwhile.
    await new Promise<void>((resolve) => {
      w.once('online', resolve);
      w.once('exit', () => resolve());
    });
    // A worker that dies between chunks leaves the rest to the other scanners; one that dies on a chunk fails it.
    for (let k: number; failure === null && (k = await this.take()) >= 0; ) {
      const task = this.tasks[k]!;
      const r = await new Promise<WorkerReply | Error>((resolve) => {
        reply = resolve;
        if (failure) resolve(failure);
        else w.postMessage(task);
      });
      reply = null;
      if (r instanceof Error) this.done(k, new SluiceError('SLUICE_INTERNAL', `a verify worker failed on ${task.path}: ${r.message}`, { cause: r }));
      else if ('error' in r) this.done(k, unreadable(task, r.error));
      else this.done(k, r.scan);
    }
  }
}
