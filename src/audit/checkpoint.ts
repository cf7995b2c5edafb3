// Signed checkpoints: each closes a batch of audit records with its Merkle root and links to the previous one.
// The signature covers a fixed-order text form (like a CT signed note) that a verifier rebuilds from the parsed line:
//
//   sluice-audit-checkpoint/v1\n
//   log_id <32 hex>\n
//   batch <n>\n
//   first_seq <n>\n
//   last_seq <n>\n
//   tree_size <n>\n
//   root <64 hex>\n
//   prev <64 hex>\n
//   time <ISO 8601 UTC>\n
//   key_id <16 hex>\n
//   segment <segment file name>\n
//   note <JSON string>\n                                                   only when present
//   pruned <first_seq> <last_seq> <JSON reason> <JSON array of names>\n    only when present
//   next_key <key_id> <base64 public key>\n                                only when present
//
// `prev` is the SHA-256 of the previous checkpoint's text form (64 zeros for batch 1). A checkpoint that seals no
// records (a pruning statement) has tree_size 0, last_seq = first_seq - 1 and the empty-tree root.
// The line is {"checkpoint":{fields in the order above},"sig":"<base64 Ed25519 signature of the text form>"}.

import { createHash } from 'node:crypto';
import { CHECKPOINT_PREFIX, SEGMENT_RE } from './segments';
import { verifySignature, type SigningKey } from './keys';

export const ZERO_HASH = '0'.repeat(64);
const HEADER = 'sluice-audit-checkpoint/v1\n';

/** Segments deleted on purpose (retention), stated in a signed checkpoint so verify can tell pruning from loss. */
export interface Pruned {
  first_seq: number;
  last_seq: number;
  segments: string[];
  reason: string;
}

export interface Checkpoint {
  log_id: string;
  batch: number;
  first_seq: number;
  last_seq: number;
  tree_size: number;
  root: string;
  prev: string;
  time: string;
  key_id: string;
  /** The segment file the checkpoint was written to, so verify can name a missing one. */
  segment: string;
  note?: string;
  pruned?: Pruned;
  /** Set on the checkpoint sealing a `key_rotation` record: later checkpoints are signed by this key. */
  next_key?: { key_id: string; public_key: string };
}

export interface SignedCheckpoint {
  cp: Checkpoint;
  sig: Buffer;
  /** The exact bytes the signature covers. */
  signed: Buffer;
  /** SHA-256 of `signed`, hex: what the next checkpoint's `prev` must be. */
  hash: string;
}

export function signedBytes(cp: Checkpoint): Buffer {
  let t =
    `${HEADER}log_id ${cp.log_id}\nbatch ${cp.batch}\nfirst_seq ${cp.first_seq}\nlast_seq ${cp.last_seq}\n` +
    `tree_size ${cp.tree_size}\nroot ${cp.root}\nprev ${cp.prev}\ntime ${cp.time}\nkey_id ${cp.key_id}\nsegment ${cp.segment}\n`;
  if (cp.note !== undefined) t += `note ${JSON.stringify(cp.note)}\n`;
  if (cp.pruned) {
    const p = cp.pruned;
    t += `pruned ${p.first_seq} ${p.last_seq} ${JSON.stringify(p.reason)} ${JSON.stringify(p.segments)}\n`;
  }
  if (cp.next_key) t += `next_key ${cp.next_key.key_id} ${cp.next_key.public_key}\n`;
  return Buffer.from(t, 'utf8');
}

export function checkpointHash(signed: Buffer): string {
  return createHash('sha256').update(signed).digest('hex');
}

/** Signs `cp` and returns the line to write (no newline) with its hash for the next checkpoint's `prev`. */
export function signCheckpoint(cp: Checkpoint, key: SigningKey): { line: string; hash: string } {
  const signed = signedBytes(cp);
  const sig = key.sign(signed);
  // Field order fixed here, so lines read in the same order as the signed text.
  const ordered: Checkpoint = {
    log_id: cp.log_id,
    batch: cp.batch,
    first_seq: cp.first_seq,
    last_seq: cp.last_seq,
    tree_size: cp.tree_size,
    root: cp.root,
    prev: cp.prev,
    time: cp.time,
    key_id: cp.key_id,
    segment: cp.segment,
  };
  if (cp.note !== undefined) ordered.note = cp.note;
  if (cp.pruned) ordered.pruned = { first_seq: cp.pruned.first_seq, last_seq: cp.pruned.last_seq, segments: cp.pruned.segments, reason: cp.pruned.reason };
  if (cp.next_key) ordered.next_key = { key_id: cp.next_key.key_id, public_key: cp.next_key.public_key };
  return { line: `${CHECKPOINT_PREFIX}${JSON.stringify(ordered)},"sig":"${sig.toString('base64')}"}`, hash: checkpointHash(signed) };
}

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const FIELDS = new Set(['log_id', 'batch', 'first_seq', 'last_seq', 'tree_size', 'root', 'prev', 'time', 'key_id', 'segment', 'note', 'pruned', 'next_key']);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Parses a checkpoint line, or says what is wrong with it. Every field must be one the signature covers, with
 * the type the text form assumes: an extra field would be carried along unsigned.
 */
export function parseCheckpoint(line: string): SignedCheckpoint | string {
  let o: { checkpoint?: Record<string, unknown>; sig?: unknown };
  try {
    o = JSON.parse(line) as typeof o;
  } catch {
    return 'not valid JSON';
  }
  const c = o?.checkpoint;
  if (!c || typeof c !== 'object' || typeof o.sig !== 'string' || Object.keys(o).length !== 2) return 'not a {"checkpoint":{…},"sig":"…"} line';
  for (const k of Object.keys(c)) if (!FIELDS.has(k)) return `field "${k}" is not covered by the signature`;
  if (typeof c.log_id !== 'string' || !/^[0-9a-f]{32}$/.test(c.log_id)) return 'log_id must be 32 hex digits';
  if (!isCount(c.batch) || c.batch < 1) return 'batch must be a positive integer';
  if (!isCount(c.first_seq) || !isCount(c.last_seq) || !isCount(c.tree_size)) return 'first_seq, last_seq and tree_size must be integers';
  if (c.last_seq - c.first_seq + 1 !== c.tree_size) return 'tree_size must equal last_seq - first_seq + 1';
  if (typeof c.root !== 'string' || !HEX64.test(c.root) || typeof c.prev !== 'string' || !HEX64.test(c.prev)) return 'root and prev must be 64 hex digits';
  if (typeof c.time !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(c.time)) return 'time must be an ISO 8601 UTC time';
  if (typeof c.key_id !== 'string' || !KEY_ID.test(c.key_id)) return 'key_id must be 16 hex digits';
  if (typeof c.segment !== 'string' || !SEGMENT_RE.test(c.segment)) return 'segment must be a segment file name';
  if (c.note !== undefined && typeof c.note !== 'string') return 'note must be a string';
  if (c.pruned !== undefined) {
    const p = c.pruned as Record<string, unknown>;
    if (
      !p ||
      typeof p !== 'object' ||
      !isCount(p.first_seq) ||
      !isCount(p.last_seq) ||
      typeof p.reason !== 'string' ||
      !Array.isArray(p.segments) ||
      !p.segments.every((s) => typeof s === 'string' && SEGMENT_RE.test(s)) ||
      Object.keys(p).length !== 4
    ) {
      return 'pruned must be {first_seq, last_seq, segments, reason}';
    }
  }
  if (c.next_key !== undefined) {
    const k = c.next_key as Record<string, unknown>;
    if (!k || typeof k !== 'object' || typeof k.key_id !== 'string' || !KEY_ID.test(k.key_id) || typeof k.public_key !== 'string' || Object.keys(k).length !== 2) {
      return 'next_key must be {key_id, public_key}';
    }
    if (Buffer.from(k.public_key, 'base64').toString('base64') !== k.public_key) return 'next_key.public_key must be base64';
  }
  const sig = Buffer.from(o.sig, 'base64');
  if (sig.length !== 64 || sig.toString('base64') !== o.sig) return 'sig must be a base64 Ed25519 signature';
  const cp = c as unknown as Checkpoint;
  const signed = signedBytes(cp);
  return { cp, sig, signed, hash: checkpointHash(signed) };
}

/** True when the checkpoint's signature verifies under `publicKey` (raw 32 bytes). */
export function checkpointSignedBy(s: SignedCheckpoint, publicKey: Buffer): boolean {
  return verifySignature(publicKey, s.signed, s.sig);
}
