// RFC 6962 / 9162 Merkle hashing against the certificate-transparency reference vectors, and proofs checked both ways.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { EMPTY_ROOT, inclusionProof, leafHash, merkleRoot, nodeHash, verifyInclusion } from '../../src/audit/merkle.js';

// The 8 leaf inputs of the CT merkle_tree_test.cc reference tree and the roots of its first n leaves.
const INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
// Audit paths from the same test file: [leaf index, tree size, path].
const PATHS: Array<[number, number, string[]]> = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

const leaves = INPUTS.map((b) => leafHash(b));
const hex = (bs: Buffer[]) => bs.map((b) => b.toString('hex'));

/** The RFC's definition, literally: split at the largest power of two below n. */
function rfcRoot(ls: Buffer[]): Buffer {
  if (ls.length === 0) return createHash('sha256').digest();
  if (ls.length === 1) return ls[0]!;
  let k = 1;
  while (k * 2 < ls.length) k *= 2;
  return nodeHash(rfcRoot(ls.slice(0, k)), rfcRoot(ls.slice(k)));
}

test('leaf and interior hashes carry the 0x00 / 0x01 domain prefixes', () => {
  assert.equal(leafHash('').toString('hex'), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
  assert.deepEqual(leafHash('é'), leafHash(Buffer.from('é', 'utf8')));
  const a = leafHash('a');
  const b = leafHash('b');
  assert.deepEqual(nodeHash(a, b), createHash('sha256').update(Buffer.from([1])).update(a).update(b).digest());
  assert.notDeepEqual(nodeHash(a, b), nodeHash(b, a));
});

test('roots of the reference tree for every size 0..8', () => {
  assert.equal(EMPTY_ROOT.toString('hex'), ROOTS[0]);
  for (let n = 0; n <= 8; n++) assert.equal(merkleRoot(leaves.slice(0, n)).toString('hex'), ROOTS[n], `size ${n}`);
});

test('the level-by-level root equals the recursive RFC split for sizes 1..300', () => {
  const many = Array.from({ length: 300 }, (_, i) => leafHash(`record ${i}`));
  for (let n = 1; n <= 300; n++) assert.deepEqual(merkleRoot(many.slice(0, n)), rfcRoot(many.slice(0, n)), `size ${n}`);
});

test('inclusion proofs match the reference audit paths and verify', () => {
  for (const [index, size, path] of PATHS) {
    const tree = leaves.slice(0, size);
    const proof = inclusionProof(index, tree);
    assert.deepEqual(hex(proof), path, `leaf ${index} of ${size}`);
    assert.ok(verifyInclusion(leaves[index]!, index, size, proof, merkleRoot(tree)));
  }
});

test('every proof in trees of 1..70 leaves verifies, and fails for a wrong leaf, index, path or root', () => {
  const many = Array.from({ length: 70 }, (_, i) => leafHash(`r${i}`));
  for (let n = 1; n <= 70; n++) {
    const tree = many.slice(0, n);
    const root = merkleRoot(tree);
    for (let i = 0; i < n; i++) {
      const proof = inclusionProof(i, tree);
      assert.ok(verifyInclusion(tree[i]!, i, n, proof, root), `leaf ${i} of ${n}`);
      assert.equal(verifyInclusion(leafHash('forged'), i, n, proof, root), false);
      if (n > 1) {
        assert.equal(verifyInclusion(tree[i]!, (i + 1) % n, n, proof, root), false, `wrong index ${i} of ${n}`);
        assert.equal(verifyInclusion(tree[i]!, i, n, proof.slice(0, -1), root), false);
        assert.equal(verifyInclusion(tree[i]!, i, n, [...proof, root], root), false);
      }
      assert.equal(verifyInclusion(tree[i]!, i, n, proof, leafHash('other root')), false);
    }
  }
  // The path alone does not bind the tree size (a 3-leaf path can pass for 4 leaves): checkpoints sign tree_size.
  assert.equal(verifyInclusion(many[0]!, 3, 3, [], merkleRoot(many.slice(0, 3))), false, 'index beyond the tree');
  assert.throws(() => inclusionProof(5, many.slice(0, 5)), RangeError);
});
