// RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing: leaf and interior hashes, roots, inclusion proofs.
// A batch of audit records is one such tree; its checkpoint signs the root, a proof ties one record to it.

import { createHash, hash } from 'node:crypto';

const LEAF_PREFIX = Buffer.from([0]);
/** The root of a tree with no leaves: SHA-256 of the empty string (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/** SHA-256(0x00 ‖ bytes); a string is hashed as its UTF-8 bytes, exactly as written to the segment. */
export function leafHash(line: Buffer | string): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(line).digest();
}

// One reused buffer: interior hashes are the bulk of Merkle work and each would otherwise allocate a concat.
const scratch = Buffer.alloc(65, 1);

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  left.copy(scratch, 1);
  right.copy(scratch, 33);
  return hash('sha256', scratch, 'buffer');
}

/**
 * MTH(D[n]). Built level by level, pairing neighbours and carrying a lone last node up unchanged, which yields
 * the same tree as the RFC's recursive split at the largest power of two below n, without the recursion.
 */
export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  const n = leaves.length;
  if (n === 0) return EMPTY_ROOT;
  const level = leaves.slice();
  for (let size = n; size > 1; size = (size + 1) >>> 1) {
    const pairs = size >>> 1;
    for (let i = 0; i < pairs; i++) level[i] = nodeHash(level[2 * i]!, level[2 * i + 1]!);
    if (size & 1) level[pairs] = level[size - 1]!;
  }
  return level[0]!;
}

/** PATH(index, D[n]): the sibling hashes from the leaf up to the root (RFC 9162 §2.1.3.1). */
export function inclusionProof(index: number, leaves: readonly Buffer[]): Buffer[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
    throw new RangeError(`leaf index ${index} is outside a tree of ${leaves.length} leaves`);
  }
  const path: Buffer[] = [];
  let level = leaves.slice();
  let i = index;
  while (level.length > 1) {
    const sibling = i ^ 1;
    // A lone last node has no sibling on this level: it is carried up and adds nothing to the path.
    if (sibling < level.length) path.push(level[sibling]!);
    const next: Buffer[] = [];
    for (let j = 0; j + 1 < level.length; j += 2) next.push(nodeHash(level[j]!, level[j + 1]!));
    if (level.length & 1) next.push(level[level.length - 1]!);
    level = next;
    i >>>= 1;
  }
  return path;
}

/** The RFC 9162 §2.1.3.2 verification algorithm: true when `proof` links `leaf` at `index` to `root`. */
export function verifyInclusion(leaf: Buffer, index: number, treeSize: number, proof: readonly Buffer[], root: Buffer): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) return false;
  // Halving with Math.floor rather than >>> keeps indices beyond 2^32 exact.
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}
