// The audit log's on-disk layout, shared by the writer, `verify`, `tail` and the SIEM sinks.
//
// A log directory holds JSON Lines segments named `audit-<first seq, 16 digits>-<UTC time>.jsonl`,
// so name order is sequence order and time order. Each line is either a record or a checkpoint:
//   {"seq":N,"prev":"<hex leaf hash of record N-1>",...}   a record (leaf = SHA-256(0x00 ‖ line bytes))
//   {"checkpoint":{...},"sig":"<base64>"}                  a signed checkpoint closing a batch
// `checkpoints.jsonl` in the same directory repeats every checkpoint line.

import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const SEGMENT_RE = /^audit-(\d{16})-(\d{8}T\d{6}Z)\.jsonl$/;
export const CHECKPOINTS_FILE = 'checkpoints.jsonl';
/** What every record line starts with; checkpoint lines start with CHECKPOINT_PREFIX. */
export const RECORD_PREFIX = '{"seq":';
export const CHECKPOINT_PREFIX = '{"checkpoint":';

export interface SegmentName {
  file: string;
  firstSeq: number;
  /** Creation time as written in the name, `YYYYMMDDTHHMMSSZ`. */
  stamp: string;
}

/** `audit-0000000000000001-20261126T042800Z.jsonl` for a segment whose first record is seq 1. */
export function segmentName(firstSeq: number, at: Date): string {
  return `audit-${String(firstSeq).padStart(16, '0')}-${timeStamp(at)}.jsonl`;
}

/** `20261126T042800Z`: the compact UTC time used in segment names (and the writer's side files). */
export function timeStamp(at: Date): string {
  const iso = at.toISOString(); // 2026-11-26T04:28:00.123Z
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + 'T' + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
}

/** The time a `timeStamp` names, in ms since the epoch. */
export function stampTime(stamp: string): number {
  return Date.UTC(+stamp.slice(0, 4), +stamp.slice(4, 6) - 1, +stamp.slice(6, 8), +stamp.slice(9, 11), +stamp.slice(11, 13), +stamp.slice(13, 15));
}

export function parseSegmentName(file: string): SegmentName | null {
  const m = SEGMENT_RE.exec(file);
  return m ? { file, firstSeq: Number(m[1]), stamp: m[2]! } : null;
}

/** The names in `dir`; none when it does not exist (a log not written yet). */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The segments in `dir`, in sequence order. A missing directory has none. */
export async function listSegments(dir: string): Promise<SegmentName[]> {
  const out: SegmentName[] = [];
  for (const n of await namesIn(dir)) {
    const s = parseSegmentName(n);
    if (s) out.push(s);
  }
  out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return out;
}

export interface SegmentLine {
  /** The line's text without its newline. */
  text: string;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** 1-based line number in the file (counted from `from`'s line when reading from an offset). */
  lineNo: number;
}

/**
 * Reads complete lines of `path` from byte `from`. A last line with no newline (being written,
 * or torn by a crash) is not returned; `end` is the offset just past the last complete line.
 * With `maxBytes`, reads about that much (more only to finish a line longer than it), so a reader
 * that pages through a large segment holds one page at a time.
 */
export async function readSegmentLines(path: string, from = 0, maxBytes = Infinity): Promise<{ lines: SegmentLine[]; end: number }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size <= from) return { lines: [], end: from };
    let buf = Buffer.allocUnsafe(Math.min(size - from, maxBytes));
    let got = 0;
    for (;;) {
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, from + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < buf.length || from + got >= size || buf.lastIndexOf(10, got - 1) >= 0) break;
      const bigger = Buffer.allocUnsafe(Math.min(size - from, buf.length * 2));
      buf.copy(bigger, 0, 0, got);
      buf = bigger;
    }
    const lines: SegmentLine[] = [];
    let start = 0;
    let lineNo = 1;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0 || nl >= got) break;
      lines.push({ text: buf.toString('utf8', start, nl), offset: from + start, lineNo: lineNo++ });
      start = nl + 1;
    }
    return { lines, end: from + start };
  } finally {
    await fh.close();
  }
}

export const segmentPath = (dir: string, s: SegmentName) => join(dir, s.file);
