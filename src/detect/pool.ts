// The detection service the pipeline calls: inspect(segments) → findings, off the event loop on a Piscina pool.
// Small inputs are scanned inline (a worker hop costs more than the scan; see bench/scan.ts), rule reloads are
// atomic, and a timed-out or crashed worker is a counted, typed error for that call, never a process crash.

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { SluiceError, type ErrorCode } from '../errors';
import { log } from '../log';
import { chooseEngine, type EngineName } from './engine';
import { cacheKey, readCached, writeCached } from './cache';
import { BUILTIN_RULES_DIR, loadRulePacks, type RuleSet } from './rules';
import { Detector, type DetectorPrebuilt, type Finding } from './scan';

export interface SegmentFinding extends Finding {
  /** Index of the segment in the inspect() call. */
  segment: number;
}

export interface InspectorOptions {
  /** Rule pack directories, in override order; default: the built-in packs only. */
  rulesDirs?: readonly string[];
  /** Worker threads; default one per core. 0 scans everything inline (tests, the CLI). */
  threads?: number;
  /** Per call, from submission (queue wait included); default 1000. */
  timeoutMs?: number;
  /** Calls whose segments total at most this many characters are scanned on the calling thread; default INLINE_MAX_CHARS. */
  inlineMaxChars?: number;
  /** Calls waiting for a worker beyond this many are refused as overloaded; default 1024. */
  maxQueue?: number;
  /** HMAC key for Finding.digest (see loadFindingKey). */
  digestKey?: Buffer;
  /** Default: chooseEngine() (Hyperscan when it loads, SLUICE_ENGINE overrides). */
  engine?: EngineName;
  /** Directory for compiled Hyperscan databases (see cache.ts); without one, every start compiles. */
  cacheDir?: string;
}

export interface InspectorStats {
  engine: EngineName;
  rules: number;
  /** Bumped by every successful reload. */
  generation: number;
  threads: number;
  inline: number;
  pooled: number;
  queued: number;
  errors: { timeout: number; crashed: number; overloaded: number; engine: number };
  reloads: { ok: number; failed: number };
  /** Where the current rules' compiled database came from: the cache, a compile (then cached), or no cache. */
  compiled: 'cache' | 'compile' | 'uncached';
}

/**
 * Calls up to this many characters are scanned inline. bench/scan.ts (case inline_vs_pool, 2-vCPU VM): a 1 KB
 * prompt takes ~20 µs inline against ~180 µs through a worker (the hop alone is ~70 µs there), and even at 64 KB
 * inline is no slower for the call itself. What the pool buys is an event loop that keeps serving other
 * exchanges while a large body is scanned; 4 KB keeps the longest inline stall around a quarter of a millisecond.
 */
export const INLINE_MAX_CHARS = 4096;

/** @internal What each worker is started with (structured-cloned into every thread). */
export interface WorkerInit {
  ruleSet: RuleSet;
  engine: EngineName;
  digestKey?: Uint8Array;
  prebuilt?: DetectorPrebuilt;
}

/** @internal One pooled call. */
export interface InspectTask {
  segments: readonly string[];
  values: boolean;
}

/** @internal */
export type WorkerReply = { ok: true; findings: SegmentFinding[] } | { ok: false; code: string; message: string };

/** Scans each segment and tags its findings with the segment index; shared by the inline path and the workers. */
export function scanSegments(detector: Detector, segments: readonly string[], values: boolean): SegmentFinding[] {
  const out: SegmentFinding[] = [];
  for (let i = 0; i < segments.length; i++) {
    for (const f of detector.scan(segments[i]!, { values })) {
      (f as SegmentFinding).segment = i;
      out.push(f as SegmentFinding);
    }
  }
  return out;
}

const WORKER_FILE = join(__dirname, 'worker.js');

/** One rule generation: the main-thread detector (inline scans, validation) and the pool running the same rules. */
interface Generation {
  detector: Detector;
  pool: Piscina | undefined;
  compiled: InspectorStats['compiled'];
}

type Resolved = { -readonly [K in keyof Required<Omit<InspectorOptions, 'digestKey' | 'engine' | 'cacheDir'>>]: Required<InspectorOptions>[K] } & {
  digestKey?: Buffer;
  cacheDir?: string;
};

export class Inspector {
  readonly engine: EngineName;
  readonly #opts: Resolved;
  #gen: Generation;
  #closed = false;
  #reloading: Promise<unknown> = Promise.resolve();
  readonly #stats: Omit<InspectorStats, 'engine' | 'rules' | 'threads' | 'queued' | 'compiled'> = {
    generation: 1,
    inline: 0,
    pooled: 0,
    errors: { timeout: 0, crashed: 0, overloaded: 0, engine: 0 },
    reloads: { ok: 0, failed: 0 },
  };

  private constructor(engine: EngineName, opts: Resolved, gen: Generation) {
    this.engine = engine;
    this.#opts = opts;
    this.#gen = gen;
  }

  /** Loads the rule packs, compiles them once, and starts the workers; throws SLUICE_RULE_INVALID on a bad pack. */
  static async start(options: InspectorOptions = {}): Promise<Inspector> {
    const engine = options.engine ?? chooseEngine().name;
    const opts: Resolved = {
      rulesDirs: options.rulesDirs ?? [BUILTIN_RULES_DIR],
      threads: options.threads ?? availableParallelism(),
      timeoutMs: options.timeoutMs ?? 1000,
      inlineMaxChars: options.inlineMaxChars ?? INLINE_MAX_CHARS,
      maxQueue: options.maxQueue ?? 1024,
      ...(options.digestKey ? { digestKey: options.digestKey } : {}),
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    };
    const gen = await buildGeneration(await loadRulePacks(opts.rulesDirs), engine, opts);
    try {
      await warm(gen, opts.threads);
    } catch (err) {
      await gen.pool?.destroy();
      throw err;
    }
    return new Inspector(engine, opts, gen);
  }

  get ruleSet(): RuleSet {
    return this.#gen.detector.ruleSet;
  }

  /**
   * Findings for every segment, each tagged with its segment index. Raw values are included only with
   * `values: true`. Rejects with SLUICE_INSPECT_TIMEOUT, SLUICE_INSPECT_CRASHED, SLUICE_INSPECT_OVERLOADED or
   * SLUICE_ENGINE_ERROR (each counted in stats().errors), or SLUICE_SHUTTING_DOWN once closed.
   */
  async inspect(segments: readonly string[], options: { values?: boolean } = {}): Promise<SegmentFinding[]> {
    if (this.#closed) throw new SluiceError('SLUICE_SHUTTING_DOWN', 'the detection pool is closed');
    const values = options.values === true;
    const gen = this.#gen;
    let chars = 0;
    for (const s of segments) chars += s.length;
    if (!gen.pool || chars <= this.#opts.inlineMaxChars) {
      this.#stats.inline++;
      try {
        return scanSegments(gen.detector, segments, values);
      } catch (err) {
        throw this.#fail('SLUICE_ENGINE_ERROR', `inline scan failed: ${(err as Error).message}`, err);
      }
    }
    this.#stats.pooled++;
    if (gen.pool.queueSize >= this.#opts.maxQueue) {
      throw this.#fail('SLUICE_INSPECT_OVERLOADED', `detection queue full (${this.#opts.maxQueue} calls waiting for ${this.#opts.threads} workers)`);
    }
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.#opts.timeoutMs);
    let reply: WorkerReply;
    try {
      reply = (await gen.pool.run({ segments, values } satisfies InspectTask, { signal: ac.signal })) as WorkerReply;
    } catch (err) {
      if (ac.signal.aborted) {
        throw this.#fail('SLUICE_INSPECT_TIMEOUT', `inspection of ${chars} characters in ${segments.length} segment(s) exceeded ${this.#opts.timeoutMs} ms; the worker was stopped and replaced`, err);
      }
      if (this.#closed) throw new SluiceError('SLUICE_SHUTTING_DOWN', 'the detection pool closed during the scan', { cause: err });
      throw this.#fail('SLUICE_INSPECT_CRASHED', `detection worker died mid-scan (${(err as Error).message}); it is being replaced`, err);
    } finally {
      clearTimeout(timer);
    }
    if (!reply.ok) throw this.#fail('SLUICE_ENGINE_ERROR', `scan failed in worker: ${reply.message}`);
    return reply.findings;
  }

  /**
   * Atomic: loads and compiles the packs in `dirs` (default: the current ones), starts a pool on them and proves
   * it answers, then swaps. On any failure the previous rules stay in force and the error is thrown. Calls in
   * flight finish on the rules they started with.
   */
  reload(dirs: readonly string[] = this.#opts.rulesDirs): Promise<RuleSet> {
    const run = this.#reloading.then(async () => {
      if (this.#closed) throw new SluiceError('SLUICE_SHUTTING_DOWN', 'the detection pool is closed');
      let next: Generation | undefined;
      try {
        next = await buildGeneration(await loadRulePacks(dirs), this.engine, this.#opts);
        await warm(next, this.#opts.threads);
      } catch (err) {
        this.#stats.reloads.failed++;
        await next?.pool?.destroy();
        throw err;
      }
      const old = this.#gen;
      this.#gen = next;
      this.#opts.rulesDirs = dirs;
      this.#stats.generation++;
      this.#stats.reloads.ok++;
      void old.pool?.close();
      return next.detector.ruleSet;
    });
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  stats(): InspectorStats {
    return {
      ...this.#stats,
      errors: { ...this.#stats.errors },
      reloads: { ...this.#stats.reloads },
      engine: this.engine,
      rules: this.#gen.detector.ruleSet.rules.length,
      threads: this.#gen.pool?.threads.length ?? 0,
      queued: this.#gen.pool?.queueSize ?? 0,
      compiled: this.#gen.compiled,
    };
  }

  /** The live worker threads, for diagnostics and fault-injection tests. */
  get workers(): readonly import('node:worker_threads').Worker[] {
    return this.#gen.pool?.threads ?? [];
  }

  /** Waits for calls in flight, then stops the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#reloading;
    await this.#gen.pool?.close();
  }

  #fail(code: ErrorCode, message: string, cause?: unknown): SluiceError {
    if (code === 'SLUICE_INSPECT_TIMEOUT') this.#stats.errors.timeout++;
    else if (code === 'SLUICE_INSPECT_CRASHED') this.#stats.errors.crashed++;
    else if (code === 'SLUICE_INSPECT_OVERLOADED') this.#stats.errors.overloaded++;
    else this.#stats.errors.engine++;
    return new SluiceError(code, message, cause === undefined ? undefined : { cause });
  }
}

/**
 * Resolves once every worker has built its detector and answered, so the first real call does not wait for a
 * thread to start (on a small VM that takes most of a second with the built-in packs) and time out.
 */
async function warm(gen: Generation, threads: number): Promise<void> {
  if (!gen.pool) return;
  await Promise.all(Array.from({ length: threads }, () => gen.pool!.run({ segments: [''], values: false } satisfies InspectTask)));
}

async function buildGeneration(
  ruleSet: RuleSet,
  engine: EngineName,
  opts: { threads: number; maxQueue: number; digestKey?: Buffer; cacheDir?: string },
): Promise<Generation> {
  const base = { prefer: engine, ...(opts.digestKey ? { digestKey: opts.digestKey } : {}) };
  let compiled: Generation['compiled'] = 'uncached';
  let detector: Detector | undefined;
  const key = opts.cacheDir && engine === 'hyperscan' ? cacheKey(ruleSet) : undefined;
  if (key) {
    const cached = await readCached(opts.cacheDir!, key);
    if (cached) {
      try {
        detector = Detector.fromRuleSet(ruleSet, { ...base, prebuilt: cached });
        compiled = 'cache';
      } catch (err) {
        // Written by another Hyperscan build or damaged: compile instead, and replace it below.
        log('warn', 'ignoring unusable compiled-rules cache entry', { file: key, error: (err as Error).message });
      }
    }
  }
  if (!detector) {
    detector = Detector.fromRuleSet(ruleSet, base);
    const prebuilt = key ? detector.prebuilt() : undefined;
    if (key && prebuilt) {
      compiled = 'compile';
      // A cache that cannot be written costs the next start a compile, nothing more.
      await writeCached(opts.cacheDir!, key, prebuilt).catch((err: unknown) =>
        log('warn', 'cannot write the compiled-rules cache', { dir: opts.cacheDir, error: (err as Error).message }),
      );
    }
  }
  if (opts.threads <= 0) return { detector, pool: undefined, compiled };
  const prebuilt = detector.prebuilt();
  const init: WorkerInit = { ruleSet, engine, ...(opts.digestKey ? { digestKey: opts.digestKey } : {}), ...(prebuilt ? { prebuilt } : {}) };
  const pool = new Piscina({
    filename: WORKER_FILE,
    minThreads: opts.threads,
    maxThreads: opts.threads,
    // Workers hold compiled rules and scratch; keeping them alive avoids paying that again under bursty load.
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData: init,
    recordTiming: false,
  });
  // A worker failing outside any task (e.g. while starting) must not become an unhandled 'error' event.
  pool.on('error', (err: Error) => log('error', 'detection worker failed outside a scan', { error: err.message }));
  return { detector, pool, compiled };
}
