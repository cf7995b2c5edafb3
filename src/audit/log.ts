// The audit log writer: numbers and hash-chains records, seals each batch under a signed Merkle checkpoint.
// append() is synchronous and never touches the disk; a worker hashes each batch, one async loop writes it, fsyncs,
// rotates, prunes and retries.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AuditConfig } from '../config/schema';
import { SluiceError } from '../errors';
import { parseCheckpoint, signCheckpoint, ZERO_HASH, type Checkpoint, type SignedCheckpoint } from './checkpoint';
import { defaultKeyFile, dropRetiredSecrets, loadOrCreateKeys, rotateKey, type KeyRing, type SigningKey } from './keys';
import { EMPTY_ROOT, leafHash, merkleRoot } from './merkle';
import { AUDIT_SCHEMA_VERSION } from './record';
import { headBytes, Sealer } from './seal';
import {
  CHECKPOINT_PREFIX,
  CHECKPOINTS_FILE,
  listSegments,
  readSegmentLines,
  RECORD_PREFIX,
  segmentName,
  stampTime,
  timeStamp,
  type SegmentName,
} from './segments';
import type { AuditSink } from './sinks/types';

/** EU AI Act Art. 19: logs kept at least six months. */
export const MIN_RETENTION_DAYS = 180;
/**
 * While the disk fails, records wait in memory up to this many bytes; beyond it they are not kept, and the next
 * checkpoint states how many were lost (they get no sequence number, so the chain stays whole). In both fail
 * modes: `closed` refuses new requests (the audit stage), but exchanges already in flight still get their record.
 */
export const FAILURE_BUFFER_BYTES = 64 * 1024 * 1024;
const RETENTION_INTERVAL_MS = 3_600_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
const DAY_MS = 86_400_000;
const ARENA_BYTES = 1 << 20;

export interface AuditLogOptions {
  /** Fed every batch once it is on disk; started by open(), closed by close(). */
  sinks?: AuditSink[];
  /** Clock for checkpoint times, segment names and retention (tests). */
  now?: () => number;
  /** Write failures (each failed attempt), sink errors and key-file errors; the log keeps running. */
  onError?: (err: Error) => void;
}

export interface AuditLogStats {
  /** Records appended since open. */
  records: number;
  /** Checkpoints written since open. */
  batches: number;
  /** Segment files in the directory. */
  segments: number;
  /** Bytes written since open, segments and checkpoints.jsonl. */
  bytes: number;
  last_seq: number;
  fsyncs: number;
  write_errors: number;
  /** Records appended but not yet sealed by a checkpoint on disk. */
  unsealed: number;
  /** Records not kept: `on_write_error: open`, disk failing, memory bound reached. */
  dropped: number;
  healthy: boolean;
}

interface Batch {
  /** The record lines to write, each ending in a newline; their heads are written when the batch is sealed. */
  data: Buffer | null;
  /** Where each line of `data` ends (its newline), as offsets in the memory under `data`. */
  ends: Int32Array;
  /** Leaves of records already on disk that the batch seals too (crash recovery); they come before `data`'s. */
  onDisk: Buffer[];
  firstSeq: number;
  /** Settles once `root` is set: heads written, leaves hashed (by the seal worker, in cut order). */
  sealed?: Promise<void>;
  /** Merkle root over `onDisk` and the lines' leaves, hex. */
  root?: string;
  key: SigningKey;
  /** The handover: this checkpoint (signed by `key`) introduces the key that signs the next ones. */
  nextKey?: SigningKey;
  note?: string;
  /** Seals records already in the active segment: must not rotate away from them. */
  inPlace?: boolean;
  /** A retention run: the segments to delete are chosen when it reaches the head of the queue. */
  retention?: boolean;
  // Progress, so a retry resumes at the step that failed and never writes a step twice.
  step: number;
  cp?: Checkpoint;
  cpHash?: string;
  cpLine?: Buffer;
  victims?: SegmentName[];
  prunedLastSeq?: number;
}

interface ActiveSegment {
  name: string;
  fh: FileHandle;
  /** Bytes known to be written; a retry writes at this offset again. */
  size: number;
  created: number;
}

export class AuditLog {
  readonly dir: string;
  private readonly cfg: AuditConfig;
  private readonly sinks: AuditSink[];
  private readonly now: () => number;
  private readonly onError: (err: Error) => void;
  private ring: KeyRing;
  private key: SigningKey;

  // Chain state: what the next record and the next checkpoint link to. `lastHex` is the leaf of the last record
  // sealed; the next batch's first record links to it.
  private logId = randomBytes(16).toString('hex');
  private seq = 0;
  private lastHex = ZERO_HASH;
  private batch = 0;
  private cpHash = ZERO_HASH;
  private sealedSeq = 0;

  // The open batch: its lines are encoded straight into one shared buffer (byte 0 spare), each after room for its
  // head, and the cut hands that buffer to the seal worker, which writes the heads (`prev` needs the leaf before) and
  // hashes. So the event loop pays for a record's UTF-8 encoding only: append went from ~8 to ~2.5 µs a record
  // (bench/audit.ts `append_main_us`), the audit log's cost on the proxy's main thread from ~70 to ~44 µs an exchange
  // (bench/README.md).
  private arena = sharedBuffer(ARENA_BYTES);
  private used = 1;
  private ends: number[] = [];
  /** The arena of a batch written already, for the next cut to reuse (no fresh pages to fault in per batch). */
  private spare: Buffer | null = null;
  private readonly sealer: Sealer;
  /** The last batch handed to the sealer; the next one waits for it, as its `prev` is that batch's last leaf. */
  private sealing: Promise<void> = Promise.resolve();
  /** Why a batch could not be sealed: it and every later batch (whose `prev` is then unknown) fail to be written. */
  private sealError: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly queue: Batch[] = [];
  private buffered = 0;
  private running = false;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private failure: SluiceError | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retries = 0;
  private retentionTimer: NodeJS.Timeout | null = null;
  private closing = false;

  private seg: ActiveSegment | null = null;
  private cpFh: FileHandle | null = null;
  private cpSize = 0;

  private readonly counts = { records: 0, batches: 0, segments: 0, bytes: 0, fsyncs: 0, write_errors: 0, dropped: 0 };
  private droppedUnnoted = 0;

  private constructor(cfg: AuditConfig, dir: string, ring: KeyRing, opts: AuditLogOptions) {
    this.cfg = cfg;
    this.dir = dir;
    this.ring = ring;
    this.key = ring.current;
    this.sinks = opts.sinks ?? [];
    this.now = opts.now ?? Date.now;
    this.onError = opts.onError ?? (() => {});
    this.sealer = new Sealer((err) => this.report(err));
  }

  /**
   * Creates the directory and key on first run, recovers from a crash (torn line set aside, unsealed records
   * sealed), completes a pending key handover and applies retention, then starts the sinks. Fails with
   * SLUICE_CONFIG_INVALID for a bad retention or key, SLUICE_AUDIT_WRITE when the directory cannot be written.
   */
  static async open(cfg: AuditConfig, dataDir: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
    if (cfg.retention_days < MIN_RETENTION_DAYS && !cfg.retention_force) {
      throw new SluiceError(
        'SLUICE_CONFIG_INVALID',
        `audit.retention_days is ${cfg.retention_days}, below the ${MIN_RETENTION_DAYS} days (six months) the EU AI Act asks for; raise it, or set audit.retention_force: true to keep less`,
      );
    }
    const dir = resolve(cfg.dir ?? join(dataDir, 'audit'));
    const now = opts.now ?? Date.now;
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
    } catch (err) {
      throw writeError(dir, err as Error, 'the audit directory cannot be created');
    }
    const keyFile = resolve(cfg.key_file ?? defaultKeyFile(dataDir));
    const ring = await loadOrCreateKeys(keyFile, { auditDir: dir, now }).catch((err: unknown) => {
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('SLUICE_CONFIG_INVALID', `audit.key_file: cannot load or create the signing key ${keyFile}: ${(err as Error).message}`, { cause: err });
    });
    const log = new AuditLog(cfg, dir, ring, opts);
    try {
      await log.recover();
      log.queue.push(log.retentionRun());
      log.kick();
      await log.idle();
    } catch (err) {
      log.closing = true;
      log.stopTimers();
      await log.sealer.close();
      await log.shutFiles();
      if (err instanceof SluiceError) throw err;
      throw writeError(dir, err as Error, 'the audit log cannot be opened');
    }
    log.retentionTimer = setInterval(() => {
      if (!log.queue.some((b) => b.retention)) {
        log.queue.push(log.retentionRun());
        log.kick();
      }
    }, RETENTION_INTERVAL_MS).unref();
    for (const s of log.sinks) Promise.resolve().then(() => s.start()).catch((err: unknown) => log.report(err));
    return log;
  }

  /**
   * Adds a record: `json` is one line of JSON object text without `seq`/`prev`; the line written is
   * `{"seq":N,"prev":"<leaf hash of record N-1>",…rest of json}`. Returns N, or 0 when the record was not kept
   * (the disk failing and FAILURE_BUFFER_BYTES waiting in memory). Synchronous, no I/O. Throws SLUICE_AUDIT_WRITE
   * after close().
   */
  append(json: string): number {
    if (this.closing) throw new SluiceError('SLUICE_AUDIT_WRITE', `the audit log in ${this.dir} is closed`);
    if (this.failure) {
      if (this.buffered >= FAILURE_BUFFER_BYTES) {
        this.counts.dropped++;
        this.droppedUnnoted++;
        return 0;
      }
    }
    if (json.charCodeAt(0) !== 123 || json.charCodeAt(json.length - 1) !== 125 || json.includes('\n')) {
      throw new SluiceError('SLUICE_INTERNAL', 'an audit record must be a JSON object on one line');
    }
    return this.add(json);
  }

  get healthy(): boolean {
    return this.failure === null;
  }

  /** The current signing key's `.pub` in the audit directory: what an auditor verifies with. */
  get publicKeyFile(): string {
    return join(this.dir, 'keys', `${this.key.keyId}.pub`);
  }

  stats(): AuditLogStats {
    return { ...this.counts, last_seq: this.seq, unsealed: this.seq - this.sealedSeq, healthy: this.healthy };
  }

  /** Seals what is pending now and resolves once every batch is on disk (and fsynced unless `fsync: none`). */
  async flush(): Promise<void> {
    this.cut();
    await this.idle();
    if (this.cfg.fsync !== 'none') {
      try {
        if (this.seg) await this.sync(this.seg.fh);
        if (this.cpFh) await this.sync(this.cpFh);
      } catch (err) {
        // Not a failed state: nothing is queued to retry, and the next batch's own fsync tells whether the disk is back.
        this.counts.write_errors++;
        const e = writeError(this.dir, err as Error, 'the records are written but may not be durable');
        this.report(e);
        throw e;
      }
    }
  }

  /** Flushes, closes the sinks and the files. Rejects with the write error when pending records could not be written. */
  async close(): Promise<void> {
    if (this.closing) return;
    let error: unknown = null;
    try {
      await this.flush();
    } catch (err) {
      error = err;
    }
    this.closing = true;
    this.stopTimers();
    await this.sealer.close();
    for (const s of this.sinks) await Promise.resolve().then(() => s.close()).catch((err: unknown) => this.report(err));
    await this.shutFiles();
    if (error) throw error;
  }

  /**
   * Rotates the signing key now: the new key goes into the key file (the old one retired), and the records
   * pending plus a `key_rotation` record are sealed by a checkpoint the old key signs. Later checkpoints use the new key.
   */
  async rotateKey(): Promise<{ old_key_id: string; new_key_id: string; public_key_file: string }> {
    const r = await rotateKey(this.ring.file, { auditDir: this.dir, now: this.now });
    this.ring = await loadOrCreateKeys(this.ring.file, { auditDir: this.dir, now: this.now });
    this.add(this.rotationRecord(this.key, this.ring.current));
    this.cut(this.ring.current);
    await this.flush();
    return r;
  }

  // ---------------------------------------------------------------------------------------------
  // Hot path

  private add(json: string): number {
    const seq = ++this.seq;
    const start = this.used;
    const head = headBytes(seq);
    // Room for the head and the worst case of 3 UTF-8 bytes per UTF-16 unit, without measuring the string first.
    if (start + head + json.length * 3 + 1 > this.arena.length) this.grow(start + head + json.length * 3 + 1);
    const a = this.arena;
    let p = start + head;
    if (json.length === 2) a[p++] = 0x7d;
    else {
      const n = a.write(json, p, 'utf8');
      a[p] = 0x2c; // the record's own '{' becomes the ',' after prev
      p += n;
    }
    a[p] = 0x0a;
    this.ends.push(p);
    this.used = p + 1;
    this.buffered += p + 1 - start;
    this.counts.records++;
    if (this.ends.length >= this.cfg.batch_records) this.cut();
    else if (this.timer === null) this.timer = setTimeout(() => this.cut(), this.cfg.batch_ms);
    return seq;
  }

  private grow(min: number): void {
    let size = this.arena.length * 2;
    while (size < min) size *= 2;
    const bigger = sharedBuffer(size);
    this.arena.copy(bigger, 0, 0, this.used);
    this.arena = bigger;
  }

  /**
   * The open batch's lines, leaving it empty. A batch that fills at least half the arena takes the arena with it
   * (no copy); a smaller one is copied out, so batches waiting on a failing disk hold little more than their bytes.
   */
  private take(): { data: Buffer | null; ends: Int32Array } {
    const ends = Int32Array.from(this.ends);
    if (ends.length === 0) return { data: null, ends };
    let lines = this.arena;
    if (this.used * 2 >= lines.length) {
      this.arena = this.spare?.length === lines.length ? this.spare : sharedBuffer(lines.length);
      this.spare = null;
    } else {
      // Same layout (byte 0 spare), so the line ends hold in the copy.
      lines = sharedBuffer(this.used);
      this.arena.copy(lines, 0, 0, this.used);
    }
    const data = lines.subarray(1, this.used);
    this.used = 1;
    this.ends = [];
    return { data, ends };
  }

  /** Hands the batch to the sealer once the batch before it is sealed; `b.sealed` settles when `b.root` is set. */
  private seal(b: Batch): void {
    const data = b.data;
    if (!data) {
      b.root = merkleRoot(b.onDisk).toString('hex');
      return;
    }
    // Its own memory, not a pooled slab: a view is posted with all of the memory under it.
    const before = new Uint8Array(32 * b.onDisk.length);
    b.onDisk.forEach((leaf, i) => before.set(leaf, 32 * i));
    const job = { lines: data.buffer as SharedArrayBuffer, from: data.byteOffset, ends: b.ends, firstSeq: b.firstSeq + b.onDisk.length, before };
    // Never rejects: the writer may reach this batch long after, and the error waits in `sealError` until then.
    const run = async () => {
      if (this.sealError) return;
      try {
        const r = await this.sealer.seal({ ...job, prev: this.lastHex });
        b.root = r.root;
        this.lastHex = r.last;
      } catch (err) {
        this.sealError = err as Error;
      }
    };
    this.sealing = b.sealed = this.sealing.then(run);
  }

  /** Closes the open batch. With `nextKey`, it is the handover batch and later batches are signed by `nextKey`. */
  private cut(nextKey?: SigningKey): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.ends.length === 0) return;
    const firstSeq = this.seq - this.ends.length + 1;
    const b: Batch = { ...this.take(), onDisk: [], firstSeq, key: this.key, step: 0 };
    if (this.droppedUnnoted > 0) {
      b.note = `${this.droppedUnnoted} records were not kept: the log could not be written and ${FAILURE_BUFFER_BYTES >> 20} MiB of records were waiting in memory`;
      this.droppedUnnoted = 0;
    }
    if (nextKey) {
      b.nextKey = nextKey;
      this.key = nextKey;
    }
    this.seal(b);
    this.queue.push(b);
    this.kick();
  }

  // ---------------------------------------------------------------------------------------------
  // The writer loop: one batch at a time, in order.

  private kick(): void {
    if (this.running || this.retryTimer) return;
    this.running = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const b = this.queue[0]!;
      try {
        await this.writeBatch(b);
      } catch (err) {
        this.running = false;
        this.failed(err as Error);
        const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.retries++);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.kick();
        }, delay).unref();
        return;
      }
      this.queue.shift();
      this.buffered -= b.data?.length ?? 0;
      this.failure = null;
      this.retries = 0;
      if (b.data && this.sinks.length > 0) {
        const lines = b.data.toString('utf8', 0, b.data.length - 1).split('\n');
        const first = b.firstSeq + b.onDisk.length;
        for (const s of this.sinks) {
          try {
            s.offer(lines, first);
          } catch (err) {
            this.report(err);
          }
        }
      }
      if (b.data && b.data.buffer.byteLength === this.arena.length) this.spare = Buffer.from(b.data.buffer);
    }
    this.running = false;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.resolve();
  }

  private idle(): Promise<void> {
    if (this.queue.length === 0 && !this.running) return Promise.resolve();
    if (this.failure && !this.running) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private failed(err: Error): void {
    this.counts.write_errors++;
    const mode =
      this.cfg.on_write_error === 'closed'
        ? 'requests are refused until it can be written again (audit.on_write_error: closed)'
        : `requests pass and records wait in memory, up to ${FAILURE_BUFFER_BYTES >> 20} MiB (audit.on_write_error: open)`;
    this.failure = writeError(this.dir, err, mode);
    this.report(this.failure);
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.reject(this.failure);
  }

  private async writeBatch(b: Batch): Promise<void> {
    const fsync = this.cfg.fsync;
    if (b.step === 0) {
      if (!b.root) await b.sealed;
      if (!b.root) throw this.sealError!;
      const now = this.now();
      if (b.retention) {
        const { victims, lastSeq } = await this.retentionVictims(now);
        if (victims.length === 0) return;
        b.victims = victims;
        b.prunedLastSeq = lastSeq;
        b.firstSeq = this.sealedSeq + 1;
      }
      await this.ensureSegment(b.firstSeq, now, !b.inPlace && !b.retention);
      const cp: Checkpoint = {
        log_id: this.logId,
        batch: this.batch + 1,
        first_seq: b.firstSeq,
        last_seq: b.firstSeq + b.onDisk.length + b.ends.length - 1,
        tree_size: b.onDisk.length + b.ends.length,
        root: b.root!,
        prev: this.cpHash,
        time: new Date(now).toISOString(),
        key_id: b.key.keyId,
        segment: this.seg!.name,
      };
      if (b.note !== undefined) cp.note = b.note;
      if (b.victims) {
        cp.pruned = {
          first_seq: b.victims[0]!.firstSeq,
          last_seq: b.prunedLastSeq!,
          segments: b.victims.map((v) => v.file),
          reason: `retention: segments whose records are all older than ${this.cfg.retention_days} days (audit.retention_days)`,
        };
      }
      if (b.nextKey) cp.next_key = { key_id: b.nextKey.keyId, public_key: b.nextKey.publicKey.toString('base64') };
      const { line, hash } = signCheckpoint(cp, b.key);
      b.cp = cp;
      b.cpHash = hash;
      b.cpLine = Buffer.from(`${line}\n`);
      b.step = 1;
    }
    const seg = this.seg!;
    if (b.step === 1) {
      // Records reach the disk before the checkpoint that vouches for them; without fsync one write does both.
      const bufs = fsync === 'none' ? (b.data ? [b.data, b.cpLine!] : [b.cpLine!]) : b.data ? [b.data] : [];
      if (bufs.length > 0) {
        const n = await this.writeAt(seg.fh, bufs, seg.size);
        if (fsync !== 'none') await this.sync(seg.fh);
        seg.size += n;
      }
      b.step = fsync === 'none' ? 3 : 2;
    }
    if (b.step === 2) {
      const n = await this.writeAt(seg.fh, [b.cpLine!], seg.size);
      // fsync: batch leaves this checkpoint to the next batch's fsync: a crash before it loses only the checkpoint,
      // which recovery rewrites over records that are already durable.
      if (fsync === 'record') await this.sync(seg.fh);
      seg.size += n;
      b.step = 3;
    }
    if (b.step === 3) {
      const fh = await this.checkpointsFile();
      const n = await this.writeAt(fh, [b.cpLine!], this.cpSize);
      if (fsync === 'record' || b.victims) await this.sync(fh);
      this.cpSize += n;
      b.step = 4;
    }
    if (b.step === 4 && b.victims) {
      // Deletion only once the signed statement of it is durable.
      await this.sync(seg.fh);
      b.step = 5;
    }
    this.batch = b.cp!.batch;
    this.cpHash = b.cpHash!;
    this.sealedSeq = b.cp!.last_seq;
    this.counts.batches++;
    if (b.victims) await this.deleteSegments(b.victims);
    if (b.nextKey) await dropRetiredSecrets(this.ring.file).catch((err: unknown) => this.report(err));
  }

  private async writeAt(fh: FileHandle, bufs: Buffer[], position: number): Promise<number> {
    let total = 0;
    for (const b of bufs) total += b.length;
    const { bytesWritten } = await fh.writev(bufs, position);
    if (bytesWritten < total) {
      const rest = Buffer.concat(bufs).subarray(bytesWritten);
      for (let off = 0; off < rest.length; ) off += (await fh.write(rest, off, rest.length - off, position + bytesWritten + off)).bytesWritten;
    }
    this.counts.bytes += total;
    return total;
  }

  private async sync(fh: FileHandle): Promise<void> {
    await fh.sync();
    this.counts.fsyncs++;
  }

  /** Rotates at a batch boundary when the active segment is too big or too old; opens one when there is none. */
  private async ensureSegment(firstSeq: number, now: number, mayRotate: boolean): Promise<void> {
    const s = this.seg;
    if (s && mayRotate && s.size > 0 && (s.size >= this.cfg.segment_max_bytes || now - s.created >= this.cfg.segment_max_age_ms)) {
      if (this.cfg.fsync !== 'none') await this.sync(s.fh);
      this.seg = null;
      await s.fh.close().catch(() => {}); // synced already; a failing close loses nothing
    }
    if (!this.seg) {
      const name = segmentName(firstSeq, new Date(now));
      const fh = await open(join(this.dir, name), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o640);
      this.seg = { name, fh, size: 0, created: now };
      this.counts.segments++;
    }
  }

  private async checkpointsFile(): Promise<FileHandle> {
    if (!this.cpFh) {
      const path = join(this.dir, CHECKPOINTS_FILE);
      this.cpFh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o640);
      this.cpSize = (await this.cpFh.stat()).size;
    }
    return this.cpFh;
  }

  // ---------------------------------------------------------------------------------------------
  // Retention

  private retentionRun(): Batch {
    return { data: null, ends: NO_LINES, onDisk: [], firstSeq: 0, key: this.key, root: EMPTY_ROOT_HEX, retention: true, step: 0 };
  }

  /**
   * Whole segments, oldest first, whose newest record is older than retention_days. A segment's records all
   * predate the creation of the next segment, whose time is in its name; the segment being written is never deleted.
   */
  private async retentionVictims(now: number): Promise<{ victims: SegmentName[]; lastSeq: number }> {
    const cutoff = now - this.cfg.retention_days * DAY_MS;
    const segs = await listSegments(this.dir);
    let n = 0;
    while (n + 1 < segs.length && segs[n]!.file !== this.seg?.name && stampTime(segs[n + 1]!.stamp) < cutoff) n++;
    return { victims: segs.slice(0, n), lastSeq: n > 0 ? segs[n]!.firstSeq - 1 : 0 };
  }

  private async deleteSegments(victims: SegmentName[]): Promise<void> {
    for (const v of victims) {
      try {
        await unlink(join(this.dir, v.file));
        this.counts.segments--;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.report(err);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Opening: where the log stands, and what a crash left behind.

  private async recover(): Promise<void> {
    const now = this.now();
    const notes: string[] = [];
    const cpPath = join(this.dir, CHECKPOINTS_FILE);
    const cpTail = await readTail(cpPath, (lines) => lines.length > 0);
    if (cpTail.torn) notes.push(await setAside(cpPath, cpTail, now));
    let last = lastCheckpoint(cpTail.lines);

    const segs = await listSegments(this.dir);
    this.counts.segments = segs.length;
    const active = segs.at(-1);
    let unsealed: string[] = [];
    let lastRecord: string | null = null;
    const missing: Array<{ s: SignedCheckpoint; line: string }> = [];
    if (active) {
      const path = join(this.dir, active.file);
      const tail = await readTail(path, (lines) => lines.some(isCheckpointLine) && lines.some(isRecordLine));
      if (tail.torn) notes.push(await setAside(path, tail, now));
      // The tail holds the last checkpoint, or is the whole segment: a batch never spans segments.
      unsealed = tail.lines.slice(tail.lines.findLastIndex(isCheckpointLine) + 1).filter(isRecordLine);
      // A crash between the segment write and the checkpoints.jsonl write leaves the latter behind.
      for (const line of tail.lines.filter(isCheckpointLine)) {
        const s = parseCheckpoint(line);
        if (typeof s !== 'string' && s.cp.batch > (last?.cp.batch ?? 0)) missing.push({ s, line });
      }
      if (missing.length > 0) last = missing.at(-1)!.s;
      for (let i = segs.length - 1; i >= 0 && lastRecord === null; i--) {
        const t = i === segs.length - 1 ? tail : await readTail(join(this.dir, segs[i]!.file), (lines) => lines.some(isRecordLine));
        lastRecord = t.lines.findLast(isRecordLine) ?? null;
      }
      const fh = await open(path, constants.O_RDWR);
      this.seg = { name: active.file, fh, size: (await fh.stat()).size, created: stampTime(active.stamp) };
    }
    if (missing.length > 0) {
      const fh = await this.checkpointsFile();
      for (const m of missing) this.cpSize += await this.writeAt(fh, [Buffer.from(`${m.line}\n`)], this.cpSize);
    }

    if (last) {
      this.logId = last.cp.log_id;
      this.batch = last.cp.batch;
      this.cpHash = last.hash;
      this.sealedSeq = last.cp.last_seq;
      this.seq = last.cp.last_seq;
    }
    if (lastRecord !== null) {
      this.seq = Math.max(this.seq, recordSeq(lastRecord));
      this.lastHex = leafHash(lastRecord).toString('hex');
    }

    // The key that signed the last checkpoint signs the next one; if that is not the current key, the next
    // checkpoint is the handover.
    let signer = this.key;
    let nextKey: SigningKey | undefined;
    if (last && last.cp.key_id !== this.key.keyId) {
      const old = this.ring.retired.get(last.cp.key_id)?.signer;
      if (!old) {
        throw new SluiceError(
          'SLUICE_CONFIG_INVALID',
          `audit.key_file: the log in ${this.dir} was last signed by key ${last.cp.key_id}, which ${this.ring.file} does not hold; ` +
            'restore the key file that does, or set audit.dir to a new directory and keep this one as evidence',
        );
      }
      signer = old;
      nextKey = this.key;
    } else if ([...this.ring.retired.values()].some((r) => r.signer)) {
      await dropRetiredSecrets(this.ring.file); // a handover finished but the crash came before the secrets were dropped
    }

    if (unsealed.length > 0) notes.unshift(`recovered after an unclean shutdown: sealing ${unsealed.length} records written before it`);
    if (unsealed.length === 0 && notes.length === 0 && !nextKey) return;
    const onDisk = unsealed.map((l) => leafHash(l));
    const firstSeq = unsealed.length > 0 ? recordSeq(unsealed[0]!) : this.seq + 1;
    const b: Batch = { data: null, ends: NO_LINES, onDisk, firstSeq, key: signer, inPlace: true, step: 0 };
    if (notes.length > 0) b.note = notes.join('; ');
    if (nextKey) {
      this.add(this.rotationRecord(signer, nextKey));
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      Object.assign(b, this.take());
      b.nextKey = nextKey;
    }
    this.seal(b);
    this.queue.push(b);
  }

  private rotationRecord(from: SigningKey, to: SigningKey): string {
    return JSON.stringify({
      v: AUDIT_SCHEMA_VERSION,
      type: 'key_rotation',
      time: new Date(this.now()).toISOString(),
      old_key_id: from.keyId,
      new_key_id: to.keyId,
      new_public_key: to.publicKey.toString('base64'),
    });
  }

  private report(err: unknown): void {
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // an error callback that throws must not take the writer down
    }
  }

  private stopTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.timer = this.retryTimer = this.retentionTimer = null;
  }

  private async shutFiles(): Promise<void> {
    const fhs = [this.seg?.fh, this.cpFh];
    this.seg = null;
    this.cpFh = null;
    for (const fh of fhs) await fh?.close().catch(() => {});
  }
}

const EMPTY_ROOT_HEX = EMPTY_ROOT.toString('hex');
const NO_LINES = new Int32Array(0);

/** A buffer the seal worker can write into: its memory is shared, not copied, when handed over. */
function sharedBuffer(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}

function writeError(dir: string, err: Error, consequence: string): SluiceError {
  const code = (err as NodeJS.ErrnoException).code;
  return new SluiceError('SLUICE_AUDIT_WRITE', `cannot write the audit log in ${dir}: ${err.message}${code ? ` (${code})` : ''}; ${consequence}`, {
    cause: err,
  });
}

const isRecordLine = (l: string) => l.startsWith(RECORD_PREFIX);
const isCheckpointLine = (l: string) => l.startsWith(CHECKPOINT_PREFIX);

function recordSeq(line: string): number {
  return Number(line.slice(RECORD_PREFIX.length, line.indexOf(',', RECORD_PREFIX.length)));
}

function lastCheckpoint(lines: readonly string[]): SignedCheckpoint | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const s = parseCheckpoint(lines[i]!);
    if (typeof s !== 'string') return s;
  }
  return null;
}

interface Tail {
  /** Complete lines at the end of the file: enough of them for the caller, or all. */
  lines: string[];
  size: number;
  /** Offset where a torn end starts: bytes after the last newline, or trailing lines that are not JSON. */
  torn: number | null;
}

/** Reads the end of a file, widening the window until `enough` holds or the whole file is read. */
async function readTail(path: string, enough: (lines: string[]) => boolean): Promise<Tail> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], size: 0, torn: null };
    throw err;
  }
  for (let window = 1 << 20; ; window *= 4) {
    const from = Math.max(0, size - window);
    const read = await readSegmentLines(path, from);
    // The first line of a window that starts mid-file may be partial.
    const got = from > 0 ? read.lines.slice(1) : read.lines;
    let torn = read.end < size ? read.end : null;
    while (got.length > 0 && !isJson(got.at(-1)!.text)) torn = got.pop()!.offset;
    const lines = got.map((l) => l.text);
    if (from === 0 || enough(lines)) return { lines, size, torn };
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Moves a torn end to `<file>.torn-<time>` (nothing is silently lost) and truncates the file to its last complete line. */
async function setAside(path: string, tail: Tail, now: number): Promise<string> {
  const from = tail.torn!;
  const fh = await open(path, constants.O_RDWR);
  try {
    const bytes = Buffer.alloc(tail.size - from);
    await fh.read(bytes, 0, bytes.length, from);
    let side = `${path}.torn-${timeStamp(new Date(now))}`;
    for (let n = 1; ; n++) {
      try {
        const out = await open(side, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o640);
        try {
          await out.writeFile(bytes);
          await out.sync();
        } finally {
          await out.close();
        }
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        side = `${path}.torn-${timeStamp(new Date(now))}.${n}`;
      }
    }
    await fh.truncate(from);
    await fh.sync();
    return `a torn end of ${bytes.length} bytes was moved to ${side.slice(side.lastIndexOf('/') + 1)}`;
  } finally {
    await fh.close();
  }
}
