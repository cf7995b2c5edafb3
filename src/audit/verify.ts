// `sluice verify`: checks an audit directory end to end (records against the hash chain and their batch's Merkle
// root, checkpoints against their signatures and each other) and names every problem by file, line and sequence number.
//
// Trust starts from the public keys given and grows only through checkpoints signed by a trusted key that introduce
// the next key (`next_key`, sealing a `key_rotation` record). checkpoints.jsonl is the full checkpoint chain, so
// pruned segments leave a verifiable statement behind; segments repeat the checkpoints of the batches they hold.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../errors';
import { checkpointSignedBy, parseCheckpoint, ZERO_HASH, type SignedCheckpoint } from './checkpoint';
import { keyIdOf, type PublicKeyInfo } from './keys';
import { inclusionProof, leafHash, merkleRoot, verifyInclusion } from './merkle';
import { CHECKPOINT_PREFIX, CHECKPOINTS_FILE, listSegments, readSegmentLines, RECORD_PREFIX } from './segments';
import { CHUNK_BYTES, ChunkScanner, defaultThreads, planChunks } from './verify-pool';
import type { ChunkScan, RecordRun } from './verify-scan';

export type ProblemKind =
  | 'modified_record'
  | 'deleted_record'
  | 'inserted_record'
  | 'reordered_records'
  | 'truncated_segment'
  | 'missing_segment'
  | 'unsealed_records'
  | 'bad_signature'
  | 'unknown_key'
  | 'broken_chain'
  | 'malformed_line';

export interface Problem {
  kind: ProblemKind;
  /** A file name in the audit directory (for a missing segment, the name its checkpoints give it). */
  file: string;
  seq?: number;
  /** 1-based line number in `file`. */
  line?: number;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Record lines checked. */
  records: number;
  /** Checkpoints in the chain. */
  batches: number;
  segments: number;
  /** Highest sequence number sealed by the chain. */
  last_seq: number;
  /** Keys trusted by the end: those given plus those introduced by trusted checkpoints. */
  keys: string[];
  /** Sequence ranges deleted on purpose, as stated by trusted checkpoints. */
  pruned: Array<{ first_seq: number; last_seq: number }>;
  problems: Problem[];
}

interface Entry {
  s: SignedCheckpoint;
  line: string;
  file: string;
  lineNo: number;
  trusted: boolean;
}

interface Rec {
  seq: number;
  /** The `prev` the line carries, as bytes (fewer than 32 when it is not hex). */
  prev: Buffer;
  leaf: Buffer;
  line: number;
  /** A key_rotation record's key. */
  rotation?: { key_id: string; public_key: string };
}

/** A run of records as a scanner left it: checked as a whole when it is a batch that verifies, else as Recs. */
class Run {
  constructor(
    private readonly scan: ChunkScan,
    readonly r: RecordRun,
    /** Lines in the segment before the chunk. */
    private readonly lineBase: number,
  ) {}

  get count(): number {
    return this.r.to - this.r.from;
  }

  seq(i: number): number {
    return this.scan.seqs[this.r.from + i]!;
  }

  line(i: number): number {
    return this.lineBase + this.scan.lineNos[this.r.from + i]!;
  }

  leaf(i: number): Buffer {
    const h = this.scan.hashes;
    return Buffer.from(h.buffer, h.byteOffset + (this.r.from + i) * 64, 32);
  }

  prev(i: number): Buffer {
    const h = this.scan.hashes;
    return Buffer.from(h.buffer, h.byteOffset + (this.r.from + i) * 64 + 32, this.scan.prevLens[this.r.from + i]!);
  }

  records(): Rec[] {
    const rotations = new Map(this.scan.rotations.filter((x) => x.index >= this.r.from && x.index < this.r.to).map((x) => [x.index - this.r.from, x]));
    return Array.from({ length: this.count }, (_, i) => {
      const rec: Rec = { seq: this.seq(i), prev: this.prev(i), leaf: this.leaf(i), line: this.line(i) };
      const rot = rotations.get(i);
      if (rot) rec.rotation = { key_id: rot.key_id, public_key: rot.public_key };
      return rec;
    });
  }
}

const same = (a: Buffer, b: Buffer) => a === b || a.equals(b);

export interface VerifyOptions {
  publicKeys: readonly PublicKeyInfo[];
  /**
   * Worker threads hashing chunks beside the main thread. Default: one per core but one, for logs of at least
   * PARALLEL_MIN_BYTES (verify-pool.ts); 0 keeps it all on the main thread.
   */
  threads?: number;
  /** @internal Nominal chunk size in bytes: tests set it small to put many chunk edges in a small log. */
  chunkBytes?: number;
  /** @internal False leaves every chunk to the worker threads: tests of the worker path. */
  mainThread?: boolean;
}

export async function verifyLog(dir: string, opts: VerifyOptions): Promise<VerifyResult> {
  const v = new Verifier(dir, opts);
  return v.run();
}

class Verifier {
  private readonly dir: string;
  private readonly opts: VerifyOptions;
  private readonly keys = new Map<string, Buffer>();
  private readonly problems: Problem[] = [];
  private readonly reported = new Set<string>();
  private readonly chain = new Map<number, Entry>();
  private haveCheckpointsFile = true;
  /** The highest batch checkpoints.jsonl holds. */
  private fileMaxBatch = 0;
  private readonly pruned: Array<{ first_seq: number; last_seq: number }> = [];
  private readonly gaps: Array<{ from: number; to: number; file: string; line: number }> = [];
  private segmentFiles = new Set<string>();

  // Walking the segments.
  private file = '';
  private expect = 1;
  /** The last record's hash and where it is, for the next record's `prev`; null after a gap. */
  private last: { seq: number; leaf: Buffer; file: string; line: number } | null = null;
  private lastBatch = 0;
  /** The records since the last batch: one run as scanned, or (once anything needs them one by one) Recs, never both. */
  private run1: Run | null = null;
  private recs: Rec[] = [];
  private records = 0;

  constructor(dir: string, opts: VerifyOptions) {
    this.dir = dir;
    this.opts = opts;
    for (const k of opts.publicKeys) this.keys.set(k.key_id, Buffer.from(k.public_key, 'base64'));
  }

  async run(): Promise<VerifyResult> {
    const segs = await listSegments(this.dir);
    this.segmentFiles = new Set(segs.map((s) => s.file));
    const sized = await Promise.all(
      segs.map(async (s) => {
        const path = join(this.dir, s.file);
        try {
          return { path, size: (await stat(path)).size };
        } catch (err) {
          throw new SluiceError('SLUICE_AUDIT_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
        }
      }),
    );
    const plan = planChunks(sized, this.opts.chunkBytes ?? CHUNK_BYTES);
    // Scanning starts now, so the chunks are being hashed while the checkpoint chain is read and its signatures checked.
    const threads = this.opts.threads ?? defaultThreads(sized.reduce((n, s) => n + s.size, 0));
    const scanner = new ChunkScanner(plan.flat(), { threads, mainThread: this.opts.mainThread });
    try {
      await this.loadChain();
      for (let i = 0; i < segs.length; i++) {
        this.file = segs[i]!.file;
        let lineBase = 0;
        let torn = 0;
        for (let c = plan[i]!.length; c > 0; c--) {
          const scan = await scanner.next();
          this.chunk(scan, lineBase);
          lineBase += scan.lines;
          torn += scan.torn;
        }
        this.endOfSegment(torn);
      }
    } finally {
      await scanner.close();
    }
    this.checkChainComplete();
    const lastSeq = this.maxSealedSeq();
    if (lastSeq >= this.expect) this.gaps.push({ from: this.expect, to: lastSeq, file: segs.at(-1)?.file ?? CHECKPOINTS_FILE, line: 0 });
    this.resolveGaps();
    return {
      ok: this.problems.length === 0,
      records: this.records,
      batches: this.chain.size,
      segments: segs.length,
      last_seq: lastSeq,
      keys: [...this.keys.keys()],
      pruned: this.pruned,
      problems: this.problems,
    };
  }

  private report(p: Problem): void {
    const key = `${p.kind}\0${p.file}\0${p.seq ?? ''}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.problems.push(p);
  }

  // ---------------------------------------------------------------------------------------------
  // The checkpoint chain

  private async loadChain(): Promise<void> {
    let lines: Array<{ text: string; lineNo: number }>;
    try {
      lines = (await readSegmentLines(join(this.dir, CHECKPOINTS_FILE))).lines;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.haveCheckpointsFile = false;
      return;
    }
    let prev: Entry | null = null;
    for (const { text, lineNo } of lines) {
      const s = parseCheckpoint(text);
      if (typeof s === 'string') {
        this.report({ kind: 'malformed_line', file: CHECKPOINTS_FILE, line: lineNo, message: `not a checkpoint: ${s}` });
        continue;
      }
      if (prev && s.cp.batch > prev.s.cp.batch + 1) {
        this.report({
          kind: 'broken_chain',
          file: CHECKPOINTS_FILE,
          line: lineNo,
          seq: prev.s.cp.last_seq + 1,
          message: `checkpoint${s.cp.batch - prev.s.cp.batch > 2 ? 's' : ''} for batch ${prev.s.cp.batch + 1}${s.cp.batch - prev.s.cp.batch > 2 ? `..${s.cp.batch - 1}` : ''} missing: batch ${prev.s.cp.batch} is followed by batch ${s.cp.batch}`,
        });
      }
      const e = this.accept(s, text, CHECKPOINTS_FILE, lineNo);
      if (!prev || e.s.cp.batch > prev.s.cp.batch) prev = e;
      this.fileMaxBatch = Math.max(this.fileMaxBatch, s.cp.batch);
    }
  }

  /** Checks a checkpoint's signature and its links to its neighbours, then adds it to the chain (unless its batch is taken). */
  private accept(s: SignedCheckpoint, line: string, file: string, lineNo: number): Entry {
    const cp = s.cp;
    const at = { file, line: lineNo, seq: cp.first_seq };
    const existing = this.chain.get(cp.batch);
    if (existing) {
      this.report({ kind: 'broken_chain', ...at, message: `a second, different checkpoint for batch ${cp.batch} (the first is ${existing.file}:${existing.lineNo})` });
      return { s, line, file, lineNo, trusted: false };
    }
    const trusted = this.checkSignature(s, file, lineNo);
    const before = this.chain.get(cp.batch - 1);
    if (cp.batch === 1) {
      if (cp.prev !== ZERO_HASH || cp.first_seq !== 1) this.report({ kind: 'broken_chain', ...at, message: 'batch 1 must start at seq 1 with a prev of 64 zeros' });
    } else if (before) {
      if (cp.prev !== before.s.hash) this.report({ kind: 'broken_chain', ...at, message: `prev does not match the hash of checkpoint batch ${cp.batch - 1} (${before.file}:${before.lineNo})` });
      else if (cp.first_seq !== before.s.cp.last_seq + 1) this.report({ kind: 'broken_chain', ...at, message: `starts at seq ${cp.first_seq}, but batch ${cp.batch - 1} ends at seq ${before.s.cp.last_seq}` });
      else if (cp.log_id !== before.s.cp.log_id) this.report({ kind: 'broken_chain', ...at, message: `log_id ${cp.log_id} differs from batch ${cp.batch - 1}'s ${before.s.cp.log_id}` });
    }
    const after = this.chain.get(cp.batch + 1);
    if (after && after.s.cp.prev !== s.hash) {
      this.report({ kind: 'broken_chain', file: after.file, line: after.lineNo, seq: after.s.cp.first_seq, message: `prev does not match the hash of checkpoint batch ${cp.batch} (${file}:${lineNo})` });
    }
    if (trusted && cp.next_key) {
      const pub = Buffer.from(cp.next_key.public_key, 'base64');
      if (pub.length !== 32 || keyIdOf(pub) !== cp.next_key.key_id) {
        this.report({ kind: 'unknown_key', ...at, message: `next_key ${cp.next_key.key_id} does not match its public key` });
      } else {
        this.keys.set(cp.next_key.key_id, pub);
      }
    }
    if (trusted && cp.pruned) this.pruned.push({ first_seq: cp.pruned.first_seq, last_seq: cp.pruned.last_seq });
    const e: Entry = { s, line, file, lineNo, trusted };
    this.chain.set(cp.batch, e);
    return e;
  }

  private checkSignature(s: SignedCheckpoint, file: string, lineNo: number): boolean {
    const key = this.keys.get(s.cp.key_id);
    const at = { file, line: lineNo, seq: s.cp.first_seq };
    if (!key) {
      this.report({ kind: 'unknown_key', ...at, message: `batch ${s.cp.batch} is signed by key ${s.cp.key_id}, which is neither given nor introduced by a trusted checkpoint` });
      return false;
    }
    if (!checkpointSignedBy(s, key)) {
      this.report({ kind: 'bad_signature', ...at, message: `the signature of batch ${s.cp.batch} does not verify under key ${s.cp.key_id}` });
      return false;
    }
    return true;
  }

  /**
   * Every batch from 1 up must have a checkpoint somewhere, and checkpoints.jsonl may trail the segments by the
   * one batch a writer can be between its two writes of a checkpoint, no more.
   */
  private checkChainComplete(): void {
    let max = 0;
    for (const b of this.chain.keys()) max = Math.max(max, b);
    for (let b = 1; b <= max; b++) {
      if (this.chain.has(b)) continue;
      let to = b;
      while (!this.chain.has(to + 1)) to++;
      const seq = (this.chain.get(b - 1)?.s.cp.last_seq ?? 0) + 1;
      this.report({ kind: 'broken_chain', file: CHECKPOINTS_FILE, seq, message: `no checkpoint for batch${to > b ? `es ${b}..${to}` : ` ${b}`} anywhere: the chain cannot be followed from batch 1` });
      b = to;
    }
    if (this.haveCheckpointsFile && max > this.fileMaxBatch + 1) {
      this.report({
        kind: 'broken_chain',
        file: CHECKPOINTS_FILE,
        seq: this.chain.get(this.fileMaxBatch + 1)!.s.cp.first_seq,
        message: `ends at batch ${this.fileMaxBatch}, but the segments hold checkpoints up to batch ${max}`,
      });
    }
  }

  private maxSealedSeq(): number {
    let max = 0;
    for (const e of this.chain.values()) max = Math.max(max, e.s.cp.last_seq);
    return max;
  }

  // ---------------------------------------------------------------------------------------------
  // Segments, chunk by chunk as the scanners (verify-scan.ts) left them, in file order.

  private chunk(scan: ChunkScan, lineBase: number): void {
    for (const item of scan.items) {
      if (item.kind === 'records') this.addRun(new Run(scan, item, lineBase));
      else if (item.text !== null) this.checkpoint(item.text, lineBase + item.line);
      else this.report({ kind: 'malformed_line', file: this.file, line: lineBase + item.line, seq: this.expect, message: 'neither a record ({"seq":N,"prev":"…",…}) nor a checkpoint line' });
    }
  }

  private addRun(run: Run): void {
    if (this.run1 === null && this.recs.length === 0) {
      this.run1 = run;
      return;
    }
    const recs = this.pending();
    for (const r of run.records()) recs.push(r);
  }

  /** The records since the last batch as Recs. */
  private pending(): Rec[] {
    if (this.run1) {
      this.recs = this.run1.records();
      this.run1 = null;
    }
    return this.recs;
  }

  private checkpoint(text: string, lineNo: number): void {
    const s = parseCheckpoint(text);
    if (typeof s === 'string') {
      this.pending();
      this.report({ kind: 'malformed_line', file: this.file, line: lineNo, seq: this.recs[0]?.seq ?? this.expect, message: `not a checkpoint: ${s}` });
      // The records before it may still be checked against the chain's copy of their checkpoint.
      const e = this.chain.get(this.lastBatch + 1);
      if (e && this.recs.length > 0 && e.s.cp.first_seq <= this.recs[0]!.seq && this.recs[0]!.seq <= e.s.cp.last_seq) {
        this.lastBatch = e.s.cp.batch;
        this.batch(e, lineNo, 'sealed');
      }
      return;
    }
    const at = { file: this.file, line: lineNo, seq: s.cp.first_seq };
    let e = this.chain.get(s.cp.batch);
    if (!e) {
      if (!this.haveCheckpointsFile) {
        this.report({ kind: 'broken_chain', file: CHECKPOINTS_FILE, seq: 1, message: `${CHECKPOINTS_FILE} is missing; only the checkpoints still in segments can be checked` });
      }
      e = this.accept(s, text, this.file, lineNo);
    } else if (e.line !== text) {
      // The segment's copy differs from the chain's: check it in its own right, then trust the chain's if it verified.
      if (this.checkSignature(s, this.file, lineNo)) {
        this.report({ kind: 'broken_chain', ...at, message: `differs from the checkpoint for batch ${s.cp.batch} at ${e.file}:${e.lineNo}: two signed versions of one batch` });
      }
      if (!e.trusted) e = { s, line: text, file: this.file, lineNo, trusted: false };
    } else if (!e.trusted) {
      this.checkSignature(s, this.file, lineNo); // named here as well: this is where the batch's records are
    }
    if (s.cp.segment !== this.file) {
      this.report({ kind: 'broken_chain', ...at, message: `checkpoint for batch ${s.cp.batch} was written to ${s.cp.segment}, but is in this segment` });
    }
    this.sealEarlierBatches(e.s.cp.first_seq, lineNo);
    this.lastBatch = Math.max(this.lastBatch, s.cp.batch);
    this.batch(e, lineNo, 'sealed');
  }

  /**
   * Records older than the checkpoint just read belong to batches whose checkpoint lines are gone from the
   * segment: check them against the chain's copies rather than calling every one of them inserted.
   */
  private sealEarlierBatches(firstSeq: number, lineNo: number): void {
    if (this.run1 && this.run1.seq(0) >= firstSeq) return;
    this.pending();
    while (this.recs.length > 0 && this.recs[0]!.seq < firstSeq) {
      const e = this.chain.get(this.lastBatch + 1);
      if (!e || e.s.cp.first_seq >= firstSeq || this.recs[0]!.seq > e.s.cp.last_seq) return;
      this.report({ kind: 'broken_chain', file: this.file, seq: e.s.cp.first_seq, line: lineNo, message: `the checkpoint line for batch ${e.s.cp.batch} (${e.file}:${e.lineNo}) is missing from this segment` });
      const rest = this.recs.filter((r) => r.seq > e.s.cp.last_seq);
      this.recs = this.recs.filter((r) => r.seq <= e.s.cp.last_seq);
      this.lastBatch = e.s.cp.batch;
      this.batch(e, lineNo, 'sealed');
      this.recs = rest;
    }
  }

  private endOfSegment(tornBytes: number): void {
    let truncated = false;
    this.pending();
    if (this.recs.length > 0) {
      // Records with no checkpoint after them: if the chain knows their batch, the segment lost its end.
      const e = this.chain.get(this.lastBatch + 1);
      const first = this.recs[0]!.seq;
      if (e && e.s.cp.first_seq <= first && first <= e.s.cp.last_seq) {
        this.lastBatch = e.s.cp.batch;
        truncated = this.batch(e, 0, 'truncated');
      } else {
        this.batch(null, 0, 'unsealed');
      }
    }
    if (tornBytes > 0 && !truncated) {
      this.report({ kind: 'truncated_segment', file: this.file, seq: this.expect, message: `ends in a partial line of ${tornBytes} bytes` });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // One batch: the records since the previous checkpoint, against the checkpoint that seals them.

  /** Returns true when it reported the segment as truncated. */
  private batch(e: Entry | null, cpLine: number, mode: 'sealed' | 'truncated' | 'unsealed'): boolean {
    const run = this.run1;
    let recs = this.recs;
    this.run1 = null;
    this.recs = [];
    const cp = e?.s.cp;
    const first = cp ? cp.first_seq : this.expect;
    let lastSeq = cp ? cp.last_seq : first - 1;
    if (!cp) lastSeq = Math.max(lastSeq, run ? run.r.maxSeq : recs.reduce((m, r) => Math.max(m, r.seq), lastSeq));
    if (first > this.expect) {
      this.gaps.push({ from: this.expect, to: first - 1, file: this.file, line: (run ? run.line(0) : recs[0]?.line) ?? cpLine });
      this.last = null;
    }
    const prevLeaf = this.last && this.last.seq === first - 1 ? this.last.leaf : null;

    // The common case: a whole run that is the batch, its chain and root checked by the scanner.
    if (run && cp && mode === 'sealed') {
      const r = run.r;
      if (run.count === cp.tree_size && r.contiguous && run.seq(0) === first && r.chained && !r.rotation && (prevLeaf === null || same(run.prev(0), prevLeaf)) && r.root === cp.root) {
        this.records += run.count;
        this.last = { seq: run.seq(run.count - 1), leaf: run.leaf(run.count - 1), file: this.file, line: run.line(run.count - 1) };
        this.expect = Math.max(this.expect, lastSeq + 1);
        return false;
      }
    }
    if (run) recs = run.records();
    // Records gathered one by one (after a malformed line, say) may still be a batch that verifies.
    else if (cp && mode === 'sealed' && recs.length === cp.tree_size) {
      let ok = true;
      for (let i = 0; i < recs.length && ok; i++) {
        const r = recs[i]!;
        ok = r.seq === first + i && (i === 0 ? prevLeaf === null || same(r.prev, prevLeaf) : same(r.prev, recs[i - 1]!.leaf)) && !r.rotation;
      }
      if (ok && merkleRoot(recs.map((r) => r.leaf)).toString('hex') === cp.root) {
        this.done(recs, lastSeq);
        return false;
      }
    }
    return this.slowBatch(recs, e, cpLine, mode, first, lastSeq, prevLeaf);
  }

  private slowBatch(recs: Rec[], e: Entry | null, cpLine: number, mode: 'sealed' | 'truncated' | 'unsealed', first: number, lastSeq: number, prevLeaf: Buffer | null): boolean {
    const file = this.file;
    const cp = e?.s.cp;
    const where = cp ? `batch ${cp.batch} seals ${first}..${lastSeq}` : `the records after the last checkpoint continue from ${first}`;
    const bySeq = new Map<number, Rec[]>();
    for (const r of recs) {
      if (r.seq < first || r.seq > lastSeq) {
        this.report({ kind: 'inserted_record', file, seq: r.seq, line: r.line, message: `record ${r.seq} does not belong here: ${where}` });
        continue;
      }
      const list = bySeq.get(r.seq);
      if (list) list.push(r);
      else bySeq.set(r.seq, [r]);
    }
    // A repeated sequence number: the genuine record is the one its successor's prev names, else the one the root accepts.
    let unresolved = false;
    for (const [seq, list] of bySeq) {
      if (list.length === 1) continue;
      const next = bySeq.get(seq + 1);
      let genuine = next?.length === 1 ? list.filter((r) => same(next[0]!.prev, r.leaf)) : [];
      if (genuine.length !== 1 && cp) {
        genuine = list.filter((r) => {
          const trial = new Map(bySeq);
          trial.set(seq, [r]);
          return rootOf(trial, first, lastSeq) === cp.root;
        });
      }
      if (genuine.length !== 1) {
        unresolved = true;
        genuine = [list[0]!];
      }
      for (const r of list) {
        if (r !== genuine[0]) this.report({ kind: 'inserted_record', file, seq: r.seq, line: r.line, message: `a second record ${r.seq}, not the one the hash chain and batch root vouch for` });
      }
      bySeq.set(seq, genuine);
    }
    const sorted = [...bySeq.values()].map((l) => l[0]!).sort((a, b) => a.seq - b.seq);
    const inFileOrder = recs.filter((r) => bySeq.get(r.seq)?.[0] === r);

    // Missing sequence numbers: deleted lines, or the cut-off end of a truncated segment.
    let truncated = false;
    let missing = 0;
    for (let s = first, i = 0; s <= lastSeq; ) {
      if (i < sorted.length && sorted[i]!.seq === s) {
        s++;
        i++;
        continue;
      }
      const to = i < sorted.length ? sorted[i]!.seq - 1 : lastSeq;
      missing += to - s + 1;
      const range = to > s ? `records ${s}..${to} are` : `record ${s} is`;
      if (mode === 'truncated' && i === sorted.length) {
        truncated = true;
        const after = sorted.at(-1);
        this.report({ kind: 'truncated_segment', file, seq: s, ...(after ? { line: after.line + 1 } : {}), message: `the segment ends early: ${range} missing (${where})` });
      } else if (mode !== 'unsealed') {
        this.report({ kind: 'deleted_record', file, seq: s, line: i < sorted.length ? sorted[i]!.line : cpLine || undefined, message: `${range} missing (${where})` });
      } else {
        this.report({ kind: 'deleted_record', file, seq: s, line: i < sorted.length ? sorted[i]!.line : undefined, message: `${range} missing before record ${to + 1}` });
      }
      s = to + 1;
    }

    // Order: records present once but not where their numbers put them.
    const moved = inFileOrder.filter((r, i) => r !== sorted[i]);
    if (moved.length > 0) {
      const m = moved.reduce((a, b) => (b.seq < a.seq ? b : a));
      const list = moved.map((r) => r.seq).slice(0, 10).join(', ');
      this.report({ kind: 'reordered_records', file, seq: m.seq, line: m.line, message: `records out of order: ${list}${moved.length > 10 ? ', …' : ''} are not in sequence order` });
    }

    // The hash chain, between records both present: a break at N+1 means record N changed (or N+1's prev did).
    const breaks: number[] = [];
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.seq === sorted[i - 1]!.seq + 1 && !same(sorted[i]!.prev, sorted[i - 1]!.leaf)) breaks.push(i);
    }
    const firstBreak = sorted.length > 0 && sorted[0]!.seq === first && prevLeaf !== null && !same(sorted[0]!.prev, prevLeaf);
    const reportBreaks = () => {
      for (const i of breaks) {
        const r = sorted[i - 1]!;
        this.report({ kind: 'modified_record', file, seq: r.seq, line: r.line, message: `record ${r.seq} was changed: its hash does not match the prev of record ${r.seq + 1}` });
      }
    };

    if (cp && mode === 'sealed' && missing === 0 && !unresolved) {
      const leaves = sorted.map((r) => r.leaf);
      if (merkleRoot(leaves).toString('hex') === cp.root) {
        // With a root that verifies, a break can only come from a checkpoint signed over altered records.
        reportBreaks();
        if (firstBreak && this.last) {
          this.report({ kind: 'modified_record', file: this.last.file, seq: this.last.seq, line: this.last.line, message: `record ${this.last.seq} was changed after it was sealed: record ${first} (whose batch root verifies) names a different hash for it` });
        }
      } else {
        // Put back the hashes the following records vouch for: if the root then verifies, those records were changed.
        for (const i of breaks) if (sorted[i]!.prev.length === 32) leaves[i - 1] = sorted[i]!.prev;
        const confirmed = breaks.length > 0 && merkleRoot(leaves).toString('hex') === cp.root;
        const suspects = breaks.length > 0 ? breaks.map((i) => sorted[i - 1]!) : [firstBreak ? sorted[0]! : sorted.at(-1)!];
        for (const r of suspects) {
          this.report({
            kind: 'modified_record',
            file,
            seq: r.seq,
            line: r.line,
            message: confirmed
              ? `record ${r.seq} was changed after it was sealed: its hash matches neither the prev of record ${r.seq + 1} nor the signed root of batch ${cp.batch}`
              : breaks.length > 0
                ? `record ${r.seq}, or the prev of record ${r.seq + 1}, was changed: they no longer match each other or the signed root of batch ${cp.batch}`
                : `record ${r.seq} does not match the signed root of batch ${cp.batch}; every other record in it is vouched for by the hash chain`,
          });
        }
      }
    } else {
      reportBreaks();
    }
    if (mode === 'unsealed' && sorted.length > 0) {
      this.report({
        kind: 'unsealed_records',
        file,
        seq: sorted[0]!.seq,
        line: sorted[0]!.line,
        message: `${sorted.length} record${sorted.length > 1 ? 's' : ''} (${sorted[0]!.seq}..${sorted.at(-1)!.seq}) after the last checkpoint ${sorted.length > 1 ? 'are' : 'is'} not sealed by any signed checkpoint`,
      });
    }
    if (cp) this.checkRotations(sorted, cp.batch, cp.next_key, cpLine);
    this.done(sorted, lastSeq);
    return truncated;
  }

  /** A key_rotation record must be sealed by the checkpoint that introduces the same key. */
  private checkRotations(recs: Rec[], batch: number, nextKey: { key_id: string; public_key: string } | undefined, cpLine: number): void {
    for (const r of recs) {
      if (r.rotation && (r.rotation.key_id !== nextKey?.key_id || r.rotation.public_key !== nextKey.public_key)) {
        this.report({ kind: 'broken_chain', file: this.file, seq: r.seq, line: r.line, message: `key_rotation record ${r.seq} introduces key ${r.rotation.key_id}, but the checkpoint sealing it (batch ${batch}, line ${cpLine}) does not` });
      }
    }
  }

  private done(sorted: Rec[], lastSeq: number): void {
    this.records += sorted.length;
    const tail = sorted.at(-1);
    if (tail) this.last = { seq: tail.seq, leaf: tail.leaf, file: this.file, line: tail.line };
    this.expect = Math.max(this.expect, lastSeq + 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Sequence numbers no segment holds: pruned on purpose, or lost (whole segments, or the end of one).

  private resolveGaps(): void {
    const entries = [...this.chain.values()].sort((a, b) => a.s.cp.batch - b.s.cp.batch);
    for (const g of this.gaps) {
      for (const [from, to] of subtract([g.from, g.to], this.pruned)) {
        let uncoveredFrom = from;
        const bySegment = new Map<string, { from: number; to: number }>();
        for (const e of entries) {
          const cp = e.s.cp;
          if (cp.tree_size === 0 || cp.last_seq < from || cp.first_seq > to) continue;
          const lo = Math.max(from, cp.first_seq);
          const hi = Math.min(to, cp.last_seq);
          const r = bySegment.get(cp.segment);
          if (r) r.to = hi;
          else bySegment.set(cp.segment, { from: lo, to: hi });
          if (lo === uncoveredFrom) uncoveredFrom = hi + 1;
        }
        for (const [name, r] of bySegment) {
          const range = r.to > r.from ? `records ${r.from}..${r.to}` : `record ${r.from}`;
          if (this.segmentFiles.has(name)) {
            if (!this.problems.some((p) => p.kind === 'truncated_segment' && p.file === name)) {
              this.report({ kind: 'truncated_segment', file: name, seq: r.from, message: `the segment ends early: ${range}, sealed by checkpoints naming this segment, are missing` });
            }
          } else {
            this.report({ kind: 'missing_segment', file: name, seq: r.from, message: `the segment is missing: ${range} sealed in it are gone and no checkpoint prunes them` });
          }
        }
        if (uncoveredFrom <= to) {
          this.report({ kind: 'missing_segment', file: g.file, seq: uncoveredFrom, line: g.line || undefined, message: `records ${uncoveredFrom}..${to} before this point are missing and no checkpoint describes them` });
        }
      }
    }
  }
}

function rootOf(bySeq: Map<number, Rec[]>, first: number, last: number): string | null {
  const leaves: Buffer[] = [];
  for (let s = first; s <= last; s++) {
    const l = bySeq.get(s);
    if (!l || l.length !== 1) return null;
    leaves.push(l[0]!.leaf);
  }
  return merkleRoot(leaves).toString('hex');
}

/** [from, to] minus the given ranges, as a list of ranges. */
function subtract(range: [number, number], cuts: ReadonlyArray<{ first_seq: number; last_seq: number }>): Array<[number, number]> {
  let out: Array<[number, number]> = [range];
  for (const c of cuts) {
    const next: Array<[number, number]> = [];
    for (const [a, b] of out) {
      if (c.last_seq < a || c.first_seq > b) next.push([a, b]);
      else {
        if (c.first_seq > a) next.push([a, c.first_seq - 1]);
        if (c.last_seq < b) next.push([c.last_seq + 1, b]);
      }
    }
    out = next;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Inclusion proofs: one record, tied to a signed checkpoint, checkable without the rest of the log.

export interface RecordProof {
  format: 'sluice-audit-proof/v1';
  seq: number;
  segment: string;
  line: number;
  /** The record line exactly as written. */
  record: string;
  leaf_index: number;
  tree_size: number;
  /** RFC 9162 audit path, leaf to root, hex. */
  audit_path: string[];
  /** The signed checkpoint line that seals the record's batch. */
  checkpoint: string;
  key_id: string;
}

/**
 * Builds an inclusion proof for a record, found by sequence number or by exchange id (a top-level `id` or
 * `exchange_id` field). Fails with SLUICE_AUDIT_PROOF when there is no such record or it is not sealed yet.
 */
export async function proveRecord(dir: string, target: number | string): Promise<RecordProof> {
  const segs = await listSegments(dir);
  const candidates =
    typeof target === 'number' ? segs.filter((s, i) => s.firstSeq <= target && (i + 1 === segs.length || segs[i + 1]!.firstSeq > target)) : [...segs].reverse();
  const needles = typeof target === 'string' ? [`"id":${JSON.stringify(target)}`, `"exchange_id":${JSON.stringify(target)}`] : [];
  for (const seg of candidates) {
    const { lines } = await readSegmentLines(join(dir, seg.file));
    let batch: Array<{ text: string; lineNo: number }> = [];
    let found = -1;
    for (const l of lines) {
      if (l.text.startsWith(CHECKPOINT_PREFIX)) {
        if (found >= 0) {
          const s = parseCheckpoint(l.text);
          if (typeof s === 'string') throw new SluiceError('SLUICE_AUDIT_PROOF', `${seg.file}:${l.lineNo}: the checkpoint sealing the record is malformed (${s}); run sluice verify`);
          const leaves = batch.map((r) => leafHash(r.text));
          const rec = batch[found]!;
          return {
            format: 'sluice-audit-proof/v1',
            seq: recordSeq(rec.text),
            segment: seg.file,
            line: rec.lineNo,
            record: rec.text,
            leaf_index: found,
            tree_size: leaves.length,
            audit_path: inclusionProof(found, leaves).map((h) => h.toString('hex')),
            checkpoint: l.text,
            key_id: s.cp.key_id,
          };
        }
        batch = [];
        continue;
      }
      if (!l.text.startsWith(RECORD_PREFIX)) continue;
      batch.push(l);
      if (found < 0 && matches(l.text, target, needles)) found = batch.length - 1;
    }
    if (found >= 0) throw new SluiceError('SLUICE_AUDIT_PROOF', `record ${String(target)} in ${seg.file} is not sealed by a checkpoint yet; retry after the batch closes`);
  }
  throw new SluiceError('SLUICE_AUDIT_PROOF', `no record ${typeof target === 'number' ? `with seq ${target}` : `with exchange id ${target}`} in ${dir}`);
}

function matches(line: string, target: number | string, needles: string[]): boolean {
  if (typeof target === 'number') return recordSeq(line) === target;
  if (!needles.some((n) => line.includes(n))) return false;
  const o = JSON.parse(line) as { id?: unknown; exchange_id?: unknown };
  return o.id === target || o.exchange_id === target;
}

function recordSeq(line: string): number {
  return Number(line.slice(RECORD_PREFIX.length, line.indexOf(',', RECORD_PREFIX.length)));
}

export interface ProofCheck {
  ok: boolean;
  message: string;
  seq?: number;
  batch?: number;
  key_id?: string;
}

/** Checks a proof from proveRecord against trusted public keys: signature, then the audit path to the signed root. */
export function checkProof(proof: unknown, publicKeys: readonly PublicKeyInfo[]): ProofCheck {
  const p = proof as Partial<RecordProof>;
  if (
    !p ||
    p.format !== 'sluice-audit-proof/v1' ||
    typeof p.record !== 'string' ||
    typeof p.checkpoint !== 'string' ||
    !Number.isSafeInteger(p.leaf_index) ||
    !Number.isSafeInteger(p.tree_size) ||
    !Array.isArray(p.audit_path) ||
    !p.audit_path.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))
  ) {
    return { ok: false, message: 'not a sluice-audit-proof/v1 document' };
  }
  const s = parseCheckpoint(p.checkpoint);
  if (typeof s === 'string') return { ok: false, message: `the checkpoint is malformed: ${s}` };
  const cp = s.cp;
  const base = { batch: cp.batch, key_id: cp.key_id };
  const key = publicKeys.find((k) => k.key_id === cp.key_id);
  if (!key) return { ok: false, ...base, message: `the checkpoint is signed by key ${cp.key_id}, which is not among the trusted keys` };
  if (!checkpointSignedBy(s, Buffer.from(key.public_key, 'base64'))) return { ok: false, ...base, message: `the checkpoint's signature does not verify under key ${cp.key_id}` };
  if (p.tree_size !== cp.tree_size) return { ok: false, ...base, message: `tree_size ${p.tree_size} differs from the checkpoint's ${cp.tree_size}` };
  if (!p.record.startsWith(RECORD_PREFIX) || recordSeq(p.record) !== cp.first_seq + p.leaf_index!) {
    return { ok: false, ...base, message: `the record is not seq ${cp.first_seq + p.leaf_index!}, the leaf the proof names` };
  }
  const path = p.audit_path.map((h) => Buffer.from(h, 'hex'));
  if (!verifyInclusion(leafHash(p.record), p.leaf_index!, p.tree_size!, path, Buffer.from(cp.root, 'hex'))) {
    return { ok: false, ...base, message: `the record and audit path do not lead to the root signed in batch ${cp.batch}` };
  }
  return { ok: true, ...base, seq: cp.first_seq + p.leaf_index!, message: `record ${cp.first_seq + p.leaf_index!} is in batch ${cp.batch}, signed by key ${cp.key_id}` };
}
