// Optional Hyperscan engine: loads build/Release/hyperscan.node if it was built and wraps it with checked arguments.
// Text scans report UTF-16 offsets (what String.slice wants); scanBytes keeps Hyperscan's raw UTF-8 byte offsets.

import { join } from 'node:path';
import { SluiceError } from '../errors';

/** Hyperscan compile flags (hs_compile.h). Mirrored here so rule sets can be built before, or without, the addon. */
export const HS_FLAGS = Object.freeze({
  CASELESS: 1,
  DOTALL: 2,
  MULTILINE: 4,
  /** Report only the first match of this pattern per scan. Hyperscan rejects it together with SOM_LEFTMOST. */
  SINGLEMATCH: 8,
  ALLOWEMPTY: 16,
  /** Treat the pattern as UTF-8 so `.` and classes consume whole characters, not bytes. */
  UTF8: 32,
  /** Unicode properties for \w, \d, \s and [[:classes:]]; needs UTF8. */
  UCP: 64,
  PREFILTER: 128,
  /** Report a real start offset; without it Hyperscan reports start 0 (it tracks only ends by default). */
  SOM_LEFTMOST: 256,
});

const KNOWN_FLAGS = Object.values(HS_FLAGS).reduce((a, b) => a | b, 0);

export interface HyperscanPattern {
  /** Rule id reported with each match and named in compile errors; an integer 0..2^32-1, may repeat. */
  id: number;
  pattern: string;
  /** Bitwise OR of HS_FLAGS; default 0. */
  flags?: number;
}

/**
 * One match. `end` is exclusive. `start` is only the true start with HS_FLAGS.SOM_LEFTMOST; otherwise it is 0.
 * Without SINGLEMATCH Hyperscan reports every end offset a pattern matches at (/a+/ on "aaa" gives three).
 */
export interface HyperscanMatch {
  id: number;
  start: number;
  end: number;
}

/** Matches in Hyperscan's report order (by end offset). `truncated` is true when maxMatches cut the scan short. */
export type HyperscanMatches = HyperscanMatch[] & { truncated: boolean };

export interface ScanOptions {
  /** Stop after this many matches (bounds memory on hostile input); the result is then marked truncated. */
  maxMatches?: number;
}

export type HyperscanErrorCode = 'SLUICE_RULE_INVALID' | 'SLUICE_ENGINE_ERROR';

/** Errors from compile (a bad rule, named by `ruleId` when one rule is at fault) or from the engine itself. */
export class HyperscanError extends SluiceError {
  readonly ruleId: number | undefined;

  constructor(code: HyperscanErrorCode, message: string, options?: { cause?: unknown; ruleId?: number }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HyperscanError';
    this.ruleId = options?.ruleId;
  }
}

// Shape of native/hyperscan.cc's exports.
interface NativeDatabase {
  scan(buf: Uint8Array, limit?: number): Uint32Array;
  serialize(): Buffer;
  close(): void;
  readonly size: number;
  readonly info: string;
}
interface NativeAddon {
  compile(patterns: ReadonlyArray<{ id: number; pattern: string; flags: number }>): NativeDatabase;
  deserialize(bytes: Uint8Array): NativeDatabase;
  info(): string;
  expressionInfo(pattern: string, flags: number): { minWidth: number; maxWidth: number };
  readonly flags: Readonly<Record<keyof typeof HS_FLAGS, number>>;
  readonly platformSupported: boolean;
}

/** Where npm's install hook (native/build.js) leaves the addon, relative to dist/src/detect/. */
export const ADDON_PATH = join(__dirname, '..', '..', '..', 'build', 'Release', 'hyperscan.node');

let loaded: { addon: NativeAddon } | { error: string } | undefined;

// Loaded on first use, not at import, so importing this module costs nothing when Hyperscan is not wanted;
// each worker thread loads its own instance (the addon keeps per-thread state in Node-API instance data).
function load(): { addon: NativeAddon } | { error: string } {
  if (loaded) return loaded;
  try {
    const addon = require(ADDON_PATH) as NativeAddon;
    loaded = addon.platformSupported
      ? { addon }
      : { error: 'this CPU is not supported by Hyperscan (it needs SSSE3)' };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    loaded = {
      error: e.code === 'MODULE_NOT_FOUND'
        ? `addon not built (${ADDON_PATH}); install libhyperscan-dev and run npm run build:native`
        : `addon failed to load: ${e.message ?? String(err)}`,
    };
  }
  return loaded;
}

function addon(): NativeAddon {
  const l = load();
  if ('error' in l) throw new HyperscanError('SLUICE_ENGINE_ERROR', `Hyperscan unavailable: ${l.error}`);
  return l.addon;
}

/** True when the native addon loaded and the CPU can run it; false means callers should use the RE2 engine. */
export function hyperscanAvailable(): boolean {
  return 'addon' in load();
}

/** Why Hyperscan is unavailable, for a startup log line; undefined when it is available. */
export function hyperscanLoadError(): string | undefined {
  const l = load();
  return 'error' in l ? l.error : undefined;
}

/** The library's version string, e.g. "5.4.0 2021-01-26". */
export function hyperscanVersion(): string {
  return addon().info();
}

/** The addon's own flag values; HS_FLAGS is checked against these by the tests. */
export function nativeFlags(): Readonly<Record<keyof typeof HS_FLAGS, number>> {
  return addon().flags;
}

// Native errors carry the same codes; rewrap them so callers get one class with a typed code and ruleId.
function rethrow(err: unknown): never {
  const e = err as { code?: unknown; message?: string; ruleId?: unknown };
  if (e && (e.code === 'SLUICE_RULE_INVALID' || e.code === 'SLUICE_ENGINE_ERROR')) {
    throw new HyperscanError(e.code, e.message ?? 'Hyperscan error', {
      cause: err,
      ruleId: typeof e.ruleId === 'number' ? e.ruleId : undefined,
    });
  }
  throw err;
}

function checkPatterns(patterns: readonly HyperscanPattern[]): Array<{ id: number; pattern: string; flags: number }> {
  if (!Array.isArray(patterns)) throw new TypeError('compile expects an array of {id, pattern, flags}');
  if (patterns.length === 0) throw new HyperscanError('SLUICE_RULE_INVALID', 'compile needs at least one pattern');
  return patterns.map((p, i) => {
    if (p === null || typeof p !== 'object') throw new TypeError(`pattern ${i} is not an object`);
    const { id, pattern, flags = 0 } = p;
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new TypeError(`pattern ${i}: id must be an integer 0..2^32-1, got ${String(id)}`);
    }
    const bad = (why: string) => new HyperscanError('SLUICE_RULE_INVALID', `rule ${id}: ${why}`, { ruleId: id });
    if (typeof pattern !== 'string') throw bad('pattern must be a string');
    if (pattern.length === 0) throw bad('pattern is empty');
    if (!Number.isInteger(flags) || flags < 0 || (flags & ~KNOWN_FLAGS) !== 0) {
      throw bad(`unknown flags ${String(flags)}`);
    }
    return { id, pattern, flags };
  });
}

function checkLimit(options: ScanOptions | undefined): number {
  const max = options?.maxMatches;
  if (max === undefined || max === Infinity) return 0;
  if (!Number.isInteger(max) || max < 0 || max >= 0xffffffff) {
    throw new RangeError(`maxMatches must be a non-negative integer, got ${String(max)}`);
  }
  return max;
}

/**
 * Compiles patterns into one block-mode database. Throws HyperscanError SLUICE_RULE_INVALID naming the rule id
 * Hyperscan rejected, or SLUICE_ENGINE_ERROR when the addon is not available.
 */
export function compile(patterns: readonly HyperscanPattern[]): HyperscanDatabase {
  const checked = checkPatterns(patterns);
  const native = addon();
  try {
    return new HyperscanDatabase(native.compile(checked));
  } catch (err) {
    rethrow(err);
  }
}

/**
 * Match widths in bytes for one pattern under `flags` (Hyperscan's hs_expression_info); `maxWidth` is undefined
 * when matches can be arbitrarily long. Throws HyperscanError SLUICE_RULE_INVALID when Hyperscan rejects it.
 */
export function expressionInfo(pattern: string, flags = 0): { minWidth: number; maxWidth: number | undefined } {
  const native = addon();
  try {
    const r = native.expressionInfo(pattern, flags);
    return { minWidth: r.minWidth, maxWidth: r.maxWidth < 0 ? undefined : r.maxWidth };
  } catch (err) {
    rethrow(err);
  }
}

/** Rebuilds a database from serialize() bytes (e.g. in a worker), skipping compilation. Same Hyperscan + CPU only. */
export function deserialize(bytes: Uint8Array): HyperscanDatabase {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('deserialize expects a Buffer or Uint8Array');
  const native = addon();
  try {
    return new HyperscanDatabase(native.deserialize(bytes));
  } catch (err) {
    rethrow(err);
  }
}

/** A compiled rule set. Scans are synchronous and use this thread's scratch space. */
export class HyperscanDatabase {
  readonly #native: NativeDatabase;

  /** @internal use compile() or deserialize() */
  constructor(native: NativeDatabase) {
    this.#native = native;
  }

  /**
   * Scans a JS string. It is UTF-8 encoded once; matches come back with UTF-16 offsets into `text`.
   * Patterns see UTF-8 bytes, so use HS_FLAGS.UTF8 (and UCP) for character-aware patterns.
   */
  scan(text: string, options?: ScanOptions): HyperscanMatches {
    if (typeof text !== 'string') throw new TypeError('scan expects a string; use scanBytes for a Buffer');
    const bytes = Buffer.from(text, 'utf8');
    const raw = this.#scanRaw(bytes, options);
    // ASCII-only text: byte offsets already are UTF-16 offsets.
    if (bytes.length !== text.length) utf8ToUtf16Offsets(bytes, raw);
    return toMatches(raw, checkLimit(options));
  }

  /**
   * Like scanBytes(), without building match objects: [id, start, end] triples in byte offsets, for callers that
   * walk thousands of reports. `truncated` as in HyperscanMatches (the triples then hold the first maxMatches).
   */
  scanTriples(bytes: Uint8Array, options?: ScanOptions): { triples: Uint32Array; truncated: boolean } {
    const raw = this.#scanRaw(bytes, options);
    const max = checkLimit(options);
    const truncated = max !== 0 && raw.length / 3 > max;
    return { triples: truncated ? raw.subarray(0, 3 * max) : raw, truncated };
  }

  /** Scans raw bytes; offsets are byte offsets into `bytes`. */
  scanBytes(bytes: Uint8Array, options?: ScanOptions): HyperscanMatches {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('scanBytes expects a Buffer or Uint8Array');
    return toMatches(this.#scanRaw(bytes, options), checkLimit(options));
  }

  /** Compiled bytes for deserialize(); lets a pool compile once and hand the result to its workers. */
  serialize(): Buffer {
    try {
      return this.#native.serialize();
    } catch (err) {
      rethrow(err);
    }
  }

  /** Bytes the compiled database occupies. */
  get size(): number {
    try {
      return this.#native.size;
    } catch (err) {
      rethrow(err);
    }
  }

  /** Frees the native database now instead of at garbage collection; later calls throw SLUICE_ENGINE_ERROR. */
  close(): void {
    this.#native.close();
  }

  #scanRaw(bytes: Uint8Array, options: ScanOptions | undefined): Uint32Array {
    const max = checkLimit(options);
    try {
      // Ask for one more than the cap so "exactly max matches" and "more than max" can be told apart.
      return this.#native.scan(bytes, max === 0 ? 0 : max + 1);
    } catch (err) {
      rethrow(err);
    }
  }
}

function toMatches(raw: Uint32Array, max: number): HyperscanMatches {
  const count = raw.length / 3;
  const truncated = max !== 0 && count > max;
  const n = truncated ? max : count;
  const out = new Array<HyperscanMatch>(n) as HyperscanMatches;
  for (let i = 0; i < n; i++) out[i] = { id: raw[3 * i]!, start: raw[3 * i + 1]!, end: raw[3 * i + 2]! };
  out.truncated = truncated;
  return out;
}

/**
 * Rewrites the [id, from, to] triples in `raw` from UTF-8 byte offsets into `bytes` to UTF-16 offsets into the
 * string `bytes` was encoded from. The distinct offsets are sorted once and resolved in a single forward walk over
 * the bytes up to the largest one, so the cost is O(bytes walked + k log k) for k offsets, not O(bytes × k).
 * Each lead byte's length gives the UTF-16 width: 1 unit for 1–3 byte sequences, 2 (a surrogate pair) for 4.
 * Buffer.from(string) always yields well-formed UTF-8 (a lone surrogate becomes the 3-byte U+FFFD, still 1 unit),
 * so lead bytes are never misread. A byte-level pattern (no UTF8 flag) can still match inside a character; such a
 * start rounds down and such an end rounds up to the enclosing character, so slice() never splits a character.
 */
export function utf8ToUtf16Offsets(bytes: Uint8Array, raw: Uint32Array): void {
  if (raw.length === 0) return;
  const offsets = new Uint32Array(raw.length / 3 * 2);
  for (let i = 0, j = 0; i < raw.length; i += 3) {
    offsets[j++] = raw[i + 1]!;
    offsets[j++] = raw[i + 2]!;
  }
  offsets.sort();
  // Dedupe in place; `unique` distinct sorted offsets remain at the front.
  let unique = 0;
  for (let i = 0; i < offsets.length; i++) {
    if (i === 0 || offsets[i] !== offsets[unique - 1]) offsets[unique++] = offsets[i]!;
  }
  const floor = new Uint32Array(unique);
  const ceil = new Uint32Array(unique);
  let k = 0;
  let pos = 0;
  let units = 0;
  while (k < unique) {
    if (pos >= bytes.length) {
      // Only the end-of-input offset can lie here.
      floor[k] = units;
      ceil[k] = units;
      k++;
      continue;
    }
    const lead = bytes[pos]!;
    const len = lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
    const width = len === 4 ? 2 : 1;
    while (k < unique && offsets[k]! < pos + len) {
      floor[k] = units;
      ceil[k] = offsets[k] === pos ? units : units + width;
      k++;
    }
    pos += len;
    units += width;
  }
  for (let i = 0; i < raw.length; i += 3) {
    raw[i + 1] = floor[search(offsets, unique, raw[i + 1]!)]!;
    raw[i + 2] = ceil[search(offsets, unique, raw[i + 2]!)]!;
  }
}

// Index of `value` in the first `n` entries of sorted `arr`; it is always present.
function search(arr: Uint32Array, n: number, value: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
