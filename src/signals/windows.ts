// Sliding time windows for the signals: 10 s slots over 5 min, 1 min slots over 1 h, and one slot since start.
// A record touches only the current 10 s slot; when a minute ends its slots fold into the minute and since-start slots.

import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import type { Percentiles, SignalsWindow } from './types';

export const FINE_MS = 10_000;
export const FINE_SLOTS = 30;
export const COARSE_MS = 60_000;
export const COARSE_SLOTS = 60;
const FINE_PER_COARSE = COARSE_MS / FINE_MS;
/** Since start, up to the last whole minute (the current minute is still in its 10 s slots). */
export const ALL = FINE_SLOTS + COARSE_SLOTS;
export const SLOTS = ALL + 1;

/** Something holding values per slot. */
export interface Slotted {
  /** The slot starts a new period: forget what it held. */
  clear(slot: number): void;
  /** A minute ended: `coarse` becomes the sum of its `fine` slots, and that sum is added to the since-start slot. */
  fold(fine: readonly number[], coarse: number): void;
}

/** What a window reads. */
export interface WindowSlots {
  /** Slots that add up to the whole window. */
  slots: number[];
  /** Per trend bucket, oldest first, the slots that add up to it. */
  buckets: number[][];
  /** Epoch ms each bucket starts at. */
  starts: number[];
  bucketMs: number;
}

/** Epoch-aligned like Date.now(), but monotonic: a wall-clock step never reopens or skips slots. */
export const monotonicNow = (): number => performance.timeOrigin + performance.now();

export class Clock {
  /** The slot records go to now. */
  fine: number;
  private fineEpoch: number;
  private coarseEpoch: number;
  private readonly tables: Slotted[] = [];
  readonly now: () => number;

  constructor(now: () => number = monotonicNow) {
    this.now = now;
    this.fineEpoch = Math.floor(now() / FINE_MS);
    this.coarseEpoch = Math.floor(this.fineEpoch / FINE_PER_COARSE);
    this.fine = this.fineEpoch % FINE_SLOTS;
  }

  track(table: Slotted): void {
    this.tables.push(table);
  }

  /** Moves to the slot of `t` (epoch ms). Nothing to do within the same 10 s, which is nearly always. */
  advance(t: number): void {
    const f = Math.floor(t / FINE_MS);
    if (f <= this.fineEpoch) return;
    const c = Math.floor(f / FINE_PER_COARSE);
    if (c > this.coarseEpoch) {
      // The minute that ended folds before any of its 10 s slots can be reused.
      const ended = this.fineSlots(this.coarseEpoch * FINE_PER_COARSE, this.fineEpoch);
      const into = coarseSlot(this.coarseEpoch);
      for (const t of this.tables) t.fold(ended, into);
      for (let m = Math.max(this.coarseEpoch + 1, c - COARSE_SLOTS + 1); m <= c; m++) this.clear(coarseSlot(m));
      this.coarseEpoch = c;
    }
    for (let e = Math.max(this.fineEpoch + 1, f - FINE_SLOTS + 1); e <= f; e++) this.clear(e % FINE_SLOTS);
    this.fineEpoch = f;
    this.fine = f % FINE_SLOTS;
  }

  /**
   * The slots of a window at `t`: 1m and 5m read 10 s slots; 1h reads the last 59 whole minutes and the current
   * one's 10 s slots; `all` reads the since-start slot and the current minute. The trend of 1h and all is per minute.
   */
  window(w: SignalsWindow, t: number = this.now()): WindowSlots {
    this.advance(t);
    const f = this.fineEpoch;
    if (w === '1m' || w === '5m') {
      const n = w === '1m' ? 6 : FINE_SLOTS;
      const slots: number[] = [];
      const starts: number[] = [];
      for (let e = f - n + 1; e <= f; e++) {
        slots.push(e % FINE_SLOTS);
        starts.push(e * FINE_MS);
      }
      return { slots, buckets: slots.map((s) => [s]), starts, bucketMs: FINE_MS };
    }
    const c = this.coarseEpoch;
    const current = this.fineSlots(c * FINE_PER_COARSE, f);
    const buckets: number[][] = [];
    const starts: number[] = [];
    for (let m = c - COARSE_SLOTS + 1; m < c; m++) {
      buckets.push([coarseSlot(m)]);
      starts.push(m * COARSE_MS);
    }
    buckets.push(current);
    starts.push(c * COARSE_MS);
    const slots = w === '1h' ? buckets.flat() : [ALL, ...current];
    return { slots, buckets, starts, bucketMs: COARSE_MS };
  }

  private fineSlots(from: number, to: number): number[] {
    const out: number[] = [];
    for (let e = from; e <= to; e++) out.push(e % FINE_SLOTS);
    return out;
  }

  private clear(slot: number): void {
    for (const t of this.tables) t.clear(slot);
  }
}

const coarseSlot = (minute: number): number => FINE_SLOTS + (minute % COARSE_SLOTS);

/** `fields` counters per slot, in one array (slot-major, so a slot clears with one fill). */
export class WindowedCounters implements Slotted {
  readonly data: Float64Array;
  readonly fields: number;

  constructor(fields: number) {
    this.fields = fields;
    this.data = new Float64Array(SLOTS * fields);
  }

  add(clock: Clock, field: number, v: number): void {
    this.data[clock.fine * this.fields + field] += v;
  }

  sum(slots: readonly number[], field: number): number {
    let s = 0;
    for (let i = 0; i < slots.length; i++) s += this.data[slots[i]! * this.fields + field]!;
    return s;
  }

  clear(slot: number): void {
    this.data.fill(0, slot * this.fields, (slot + 1) * this.fields);
  }

  fold(fine: readonly number[], coarse: number): void {
    for (let field = 0; field < this.fields; field++) {
      const s = this.sum(fine, field);
      this.data[coarse * this.fields + field] = s;
      this.data[ALL * this.fields + field] += s;
    }
  }
}

/** Values above this (one hour, in µs) are recorded as this: an HDR histogram silently drops what is beyond its range. */
const HDR_MAX_US = 3_600_000_000;

function hdr(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: HDR_MAX_US, figures: 3 });
}

/** A latency distribution per slot as HDR histograms (3 significant figures), recorded in integer µs. */
export class LatencyWindows implements Slotted {
  private readonly slots: RecordableHistogram[] = Array.from({ length: SLOTS }, hdr);
  private readonly scratch = hdr();

  record(clock: Clock, ms: number): void {
    this.slots[clock.fine]!.record(ms >= HDR_MAX_US / 1000 ? HDR_MAX_US : ms < 0.001 ? 1 : Math.round(ms * 1000));
  }

  clear(slot: number): void {
    this.slots[slot]!.reset();
  }

  fold(fine: readonly number[], coarse: number): void {
    const into = this.slots[coarse]!;
    for (const s of fine) if (this.slots[s]!.count > 0) into.add(this.slots[s]!);
    if (into.count > 0) this.slots[ALL]!.add(into);
  }

  /** Percentiles over the slots, merged (empty ones skipped). */
  percentiles(slots: readonly number[]): Percentiles {
    if (slots.length === 1) return percentiles(this.slots[slots[0]!]!);
    const m = this.scratch;
    m.reset();
    for (const slot of slots) {
      const h = this.slots[slot]!;
      if (h.count > 0) m.add(h);
    }
    return percentiles(m);
  }
}

const toMs = (us: number): number => Math.round(us) / 1000;

function percentiles(h: RecordableHistogram): Percentiles {
  if (h.count === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.count,
    p50: toMs(h.percentile(50)),
    p90: toMs(h.percentile(90)),
    p99: toMs(h.percentile(99)),
    p999: toMs(h.percentile(99.9)),
    max: toMs(h.max),
  };
}

const LOG_BUCKETS = 100;

/**
 * A compact latency histogram per slot for one destination: log buckets 2^(1/4) apart from 0.1 ms (≈ ±9 %) up to
 * about 56 min, so two hundred destinations cost a few MB where HDR histograms per slot would cost hundreds.
 */
export class LogLatencyWindows implements Slotted {
  /** Counts per (slot, bucket); since-start is a Float64Array of its own so it cannot wrap. */
  private readonly ring = new Uint32Array(ALL * LOG_BUCKETS);
  private readonly all = new Float64Array(LOG_BUCKETS);

  record(clock: Clock, ms: number): void {
    const b = ms <= 0.1 ? 0 : Math.min(LOG_BUCKETS - 1, Math.floor(4 * Math.log2(ms * 10)));
    this.ring[clock.fine * LOG_BUCKETS + b]!++;
  }

  clear(slot: number): void {
    if (slot < ALL) this.ring.fill(0, slot * LOG_BUCKETS, (slot + 1) * LOG_BUCKETS);
  }

  fold(fine: readonly number[], coarse: number): void {
    const r = this.ring;
    for (let b = 0; b < LOG_BUCKETS; b++) {
      let s = 0;
      for (const f of fine) s += r[f * LOG_BUCKETS + b]!;
      r[coarse * LOG_BUCKETS + b] = s;
      this.all[b]! += s;
    }
  }

  /** The q-quantile (0..1) in ms over the slots: the geometric middle of the bucket it falls in; 0 when empty. */
  quantile(slots: readonly number[], q: number): { count: number; value: number } {
    const counts = new Float64Array(LOG_BUCKETS);
    for (const s of slots) {
      if (s === ALL) for (let b = 0; b < LOG_BUCKETS; b++) counts[b]! += this.all[b]!;
      else for (let b = 0; b < LOG_BUCKETS; b++) counts[b]! += this.ring[s * LOG_BUCKETS + b]!;
    }
    let n = 0;
    for (let b = 0; b < LOG_BUCKETS; b++) n += counts[b]!;
    if (n === 0) return { count: 0, value: 0 };
    const rank = Math.ceil(q * n);
    let seen = 0;
    for (let b = 0; b < LOG_BUCKETS; b++) {
      seen += counts[b]!;
      if (seen >= rank) return { count: n, value: Math.round(0.1 * 2 ** ((b + 0.5) / 4) * 1000) / 1000 };
    }
    return { count: n, value: 0 };
  }
}
