// One chunk of a segment, read and hashed for `sluice verify`: the per-record work (leaf hash, the `prev` it carries,
// the batch's Merkle root), done the same way on the main thread and in the verify workers (verify-pool.ts).
//
// A segment is cut into chunks at checkpoint lines, so a chunk holds whole batches and a worker can compute their
// roots alone. The cut is found from a nominal byte offset by both neighbours independently: chunk k starts after
// the first checkpoint line that starts at or after its nominal start, and chunk k-1 stops after that same line.
// The result is flat typed arrays (transferred, not copied, from a worker) plus a short list of runs and other
// lines; the verifier looks at single records only when a batch does not check out as a whole.

import { hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { merkleRoot } from './merkle';
import { CHECKPOINT_PREFIX, RECORD_PREFIX } from './segments';

/** Bytes read at a time. Two pages per scanner: the next is read while this one is hashed. */
const PAGE = 1 << 20;
const PREFIX = Buffer.from(RECORD_PREFIX);
const CP_PREFIX = Buffer.from(CHECKPOINT_PREFIX);
const PREV_KEY = Buffer.from(',"prev":"');
const VERSION_KEY = Buffer.from(',"v":');
const ROTATION = Buffer.from(',"type":"key_rotation"');
const HEX_DIGITS = Buffer.from('0123456789abcdef');

/** A byte range of a segment to scan; `to` is Infinity for a segment's last chunk (read to the end of the file). */
export interface ChunkTask {
  path: string;
  from: number;
  to: number;
}

/** Records with no other line between them, in file order: the index range [from, to) of ChunkScan's arrays. */
export interface RecordRun {
  kind: 'records';
  from: number;
  to: number;
  /** Each seq is the one before plus 1. */
  contiguous: boolean;
  /** Each record's `prev` is the leaf of the record before it in the run. */
  chained: boolean;
  /** A key_rotation record is among them. */
  rotation: boolean;
  maxSeq: number;
  /** The Merkle root over the run's leaves, hex, when a checkpoint line follows it (a batch, if all is well). */
  root: string | null;
}

/** A line that is not a record: a checkpoint line (text), or one that is neither (null). */
export interface OtherLine {
  kind: 'line';
  /** 1-based within the chunk. */
  line: number;
  text: string | null;
}

export interface ChunkScan {
  /** Complete lines in the chunk. */
  lines: number;
  /** Bytes of a last line with no newline, when this chunk ran to the end of the file. */
  torn: number;
  records: number;
  /** Per record: seq; line number within the chunk; leaf hash then the `prev` it carries (64 bytes); prev length. */
  seqs: Float64Array;
  lineNos: Uint32Array;
  hashes: Uint8Array;
  /** How many bytes the prev's hex decoded to: 32, or fewer when it is not hex. */
  prevLens: Uint8Array;
  rotations: Array<{ index: number; key_id: string; public_key: string }>;
  items: Array<RecordRun | OtherLine>;
}

/** The ArrayBuffers a ChunkScan holds, to transfer rather than copy. */
export function transferables(s: ChunkScan): ArrayBuffer[] {
  return [s.seqs.buffer as ArrayBuffer, s.lineNos.buffer as ArrayBuffer, s.hashes.buffer as ArrayBuffer, s.prevLens.buffer as ArrayBuffer];
}

/** Whether `buf` holds the lowercase hex of `bytes` at `at`: compared in place, no string made. */
function hexAt(buf: Buffer, at: number, bytes: Buffer): boolean {
  for (let i = 0; i < 32; i++) {
    const b = bytes[i]!;
    if (buf[at + 2 * i] !== HEX_DIGITS[b >> 4] || buf[at + 2 * i + 1] !== HEX_DIGITS[b & 15]) return false;
  }
  return true;
}

function bytesAt(buf: Buffer, at: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

const isCheckpointLine = (buf: Buffer, start: number, end: number) => end - start >= CP_PREFIX.length && bytesAt(buf, start, CP_PREFIX);

/**
 * Scans the chunk of `task.path` that starts after the first checkpoint line beginning at or after `task.from` (at
 * byte 0 for the first chunk) and ends with the first checkpoint line beginning at or after `task.to` (or at the end
 * of the file). Cut points never go back, so chunks neither overlap nor leave lines out; one may be empty.
 */
export async function scanChunk(task: ChunkTask): Promise<ChunkScan> {
  const fh = await open(task.path, 'r');
  try {
    const rec = new Recorder();
    // Reading from the byte before `from`: what comes before the first newline belongs to a line that starts
    // earlier (just that newline when `from` starts a line), so it is dropped.
    let phase: 'align' | 'skip' | 'scan' = task.from > 0 ? 'align' : 'scan';
    const torn = await eachLine(fh, Math.max(0, task.from - 1), (buf, start, end, at) => {
      if (phase === 'align') {
        phase = 'skip';
        return true;
      }
      const cp = isCheckpointLine(buf, start, end);
      // Up to and including the checkpoint line the previous chunk ends with. When that line is past `to` too, it
      // is also where this chunk would end: the chunk is empty.
      if (phase === 'skip') {
        if (!cp) return true;
        if (at >= task.to) return false;
        phase = 'scan';
        return true;
      }
      rec.line(buf, start, end, cp);
      return !(cp && at >= task.to);
    });
    return rec.finish(phase === 'scan' ? Math.max(0, torn) : 0);
  } finally {
    await fh.close();
  }
}

/**
 * Calls `onLine` with each complete line from `position` on (without its newline, with a spare byte before it that
 * the callee may overwrite) and the line's file offset, until it returns false (then -1) or the file ends (then the
 * length of a last line with no newline).
 */
async function eachLine(fh: FileHandle, position: number, onLine: (buf: Buffer, start: number, end: number, at: number) => boolean): Promise<number> {
  const bufs = [Buffer.allocUnsafe(PAGE + 1), Buffer.allocUnsafe(PAGE + 1)];
  let which = 0;
  let pos = position;
  let reading = fh.read(bufs[0]!, 1, PAGE, pos);
  // A line begun in an earlier page: its pieces, joined once its newline comes (a line of many pages is copied once).
  const carry: Buffer[] = [];
  let carryBytes = 0;
  let carryAt = 0;
  try {
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) return carryBytes;
      const buf = bufs[which]!.subarray(0, 1 + bytesRead); // indexOf stops at the bytes read, not stale ones
      const base = pos - 1; // the file offset of buf[0]
      which ^= 1;
      pos += bytesRead;
      reading = fh.read(bufs[which]!, 1, PAGE, pos);
      let start = 1;
      if (carryBytes > 0) {
        const nl = buf.indexOf(10, 1);
        if (nl < 0) {
          carry.push(Buffer.from(buf.subarray(1))); // copied: the page is read into again
          carryBytes += bytesRead;
          continue;
        }
        const joined = Buffer.allocUnsafe(1 + carryBytes + nl - 1);
        let at = 1;
        for (const piece of carry) at += piece.copy(joined, at);
        buf.copy(joined, at, 1, nl);
        carry.length = 0;
        carryBytes = 0;
        if (!onLine(joined, 1, joined.length, carryAt)) return -1;
        start = nl + 1;
      }
      for (;;) {
        const nl = buf.indexOf(10, start);
        if (nl < 0) break;
        if (!onLine(buf, start, nl, base + start)) return -1;
        start = nl + 1;
      }
      if (start < buf.length) {
        carry.push(Buffer.from(buf.subarray(start)));
        carryBytes = buf.length - start;
        carryAt = base + start;
      }
    }
  } finally {
    await reading.catch(() => {});
  }
}

/** Builds a ChunkScan line by line. */
class Recorder {
  private lines = 0;
  private n = 0;
  private seqs = new Float64Array(1024);
  private lineNos = new Uint32Array(1024);
  private hashes = new Uint8Array(1024 * 64);
  private prevLens = new Uint8Array(1024);
  private readonly rotations: ChunkScan['rotations'] = [];
  private readonly items: ChunkScan['items'] = [];
  /** The leaf of the last record line, for the next one's prev. */
  private lastLeaf: Buffer | null = null;
  // The run being built.
  private runFrom = 0;
  private contiguous = true;
  private chained = true;
  private rotation = false;
  private maxSeq = 0;
  private leaves: Buffer[] = [];

  line(buf: Buffer, start: number, end: number, checkpoint: boolean): void {
    const lineNo = ++this.lines;
    if (buf[start + 2] === 0x73 /* s */ && this.record(buf, start, end, lineNo)) return;
    this.endRun(checkpoint);
    this.items.push({ kind: 'line', line: lineNo, text: checkpoint ? buf.toString('utf8', start, end) : null });
  }

  finish(torn: number): ChunkScan {
    this.endRun(false);
    return {
      lines: this.lines,
      torn,
      records: this.n,
      seqs: this.seqs,
      lineNos: this.lineNos,
      hashes: this.hashes,
      prevLens: this.prevLens,
      rotations: this.rotations,
      items: this.items,
    };
  }

  private endRun(checkpointFollows: boolean): void {
    if (this.n > this.runFrom) {
      this.items.push({
        kind: 'records',
        from: this.runFrom,
        to: this.n,
        contiguous: this.contiguous,
        chained: this.chained,
        rotation: this.rotation,
        maxSeq: this.maxSeq,
        root: checkpointFollows ? merkleRoot(this.leaves).toString('hex') : null,
      });
    }
    this.runFrom = this.n;
    this.contiguous = true;
    this.chained = true;
    this.rotation = false;
    this.maxSeq = 0;
    this.leaves = [];
  }

  /** Reads seq and prev from the fixed prefix `{"seq":N,"prev":"<64 hex>"` without parsing the JSON; false when not a record. */
  private record(buf: Buffer, start: number, end: number, lineNo: number): boolean {
    // Comparisons stop at `end` at the latest: the byte there is the newline (or past the buffer), in no pattern.
    if (!bytesAt(buf, start, PREFIX)) return false;
    let i = start + PREFIX.length;
    let seq = 0;
    const digits = i;
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39 && i - digits < 16) seq = seq * 10 + (buf[i++]! - 0x30);
    if (i === digits || (buf[digits] === 0x30 && i - digits > 1)) return false;
    if (!bytesAt(buf, i, PREV_KEY)) return false;
    const p = i + PREV_KEY.length;
    if (p + 65 >= end || buf[p + 64] !== 0x22 || (buf[p + 65] !== 0x2c && buf[p + 65] !== 0x7d)) return false;
    // The writer's own events start `,"v":N,"type":"…"` right after prev.
    let t = p + 65;
    if (bytesAt(buf, t, VERSION_KEY)) for (t += VERSION_KEY.length; t < end && buf[t]! >= 0x30 && buf[t]! <= 0x39; ) t++;
    let rotation: { key_id: string; public_key: string } | null = null;
    if (bytesAt(buf, t, ROTATION)) {
      try {
        const o = JSON.parse(buf.toString('utf8', start, end)) as { new_key_id?: unknown; new_public_key?: unknown };
        rotation = { key_id: String(o.new_key_id), public_key: String(o.new_public_key) };
      } catch {
        return false;
      }
    }
    // The leaf is SHA-256 over 0x00 and the line: the spare byte before the line stands in for the 0x00.
    const saved = buf[start - 1]!;
    buf[start - 1] = 0;
    const leaf = hash('sha256', buf.subarray(start - 1, end), 'buffer');
    buf[start - 1] = saved;

    const k = this.n;
    if (k === this.seqs.length) this.grow();
    const o = k * 64;
    this.hashes.set(leaf, o);
    const before = this.lastLeaf;
    // Usually prev names the line before: compared as hex in place, it needs no decoding.
    const linked = before !== null && hexAt(buf, p, before);
    if (linked) {
      this.hashes.set(before, o + 32);
      this.prevLens[k] = 32;
    } else {
      const prev = Buffer.from(buf.toString('latin1', p, p + 64), 'hex');
      this.hashes.set(prev, o + 32);
      this.prevLens[k] = prev.length;
    }
    if (k > this.runFrom) {
      if (!linked) this.chained = false;
      if (seq !== this.seqs[k - 1]! + 1) this.contiguous = false;
    }
    if (rotation) {
      this.rotation = true;
      this.rotations.push({ index: k, ...rotation });
    }
    this.seqs[k] = seq;
    this.lineNos[k] = lineNo;
    this.maxSeq = Math.max(this.maxSeq, seq);
    this.leaves.push(leaf);
    this.lastLeaf = leaf;
    this.n = k + 1;
    return true;
  }

  private grow(): void {
    const cap = this.seqs.length * 2;
    const seqs = new Float64Array(cap);
    seqs.set(this.seqs);
    const lineNos = new Uint32Array(cap);
    lineNos.set(this.lineNos);
    const hashes = new Uint8Array(cap * 64);
    hashes.set(this.hashes);
    const prevLens = new Uint8Array(cap);
    prevLens.set(this.prevLens);
    this.seqs = seqs;
    this.lineNos = lineNos;
    this.hashes = hashes;
    this.prevLens = prevLens;
  }
}
