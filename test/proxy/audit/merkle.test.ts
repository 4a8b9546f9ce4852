import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalize } from '../../../proxy/audit/canonical-json.ts';
import {
  consistencyProof, EMPTY_ROOT, inclusionProof, leafHash, MerkleFrontier, MerkleTree, nodeHash, rootOf, verifyConsistency, verifyInclusion,
} from '../../../proxy/audit/merkle.ts';

const leaves = Array.from({ length: 70 }, (_, i) => leafHash(`record ${i}`));

test('RFC 8785: sorted keys by UTF-16 units, ES number forms, escapes, undefined dropped', () => {
  assert.equal(canonicalize({ b: 1, a: [true, null, 'x'], c: undefined }), '{"a":[true,null,"x"],"b":1}');
  // RFC 8785 §3.2.3's sorting example: keys compare as UTF-16 code units.
  const keys = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
  // (Checked on the text: JSON.parse would put the integer-like key "1" first again.)
  const text = canonicalize(keys);
  const order = Object.values(keys).sort((a, b) => text.indexOf(a) - text.indexOf(b));
  assert.deepEqual(order, ['Carriage Return', 'One', 'Control', 'Latin Small Letter O With Diaeresis', 'Euro Sign', 'Emoji: Grinning Face', 'Hebrew Letter Dalet With Dagesh']);
  assert.equal(canonicalize([333333333.33333329, 1e30, 4.5, 0.002, 1e-7, -0]), '[333333333.3333333,1e+30,4.5,0.002,1e-7,0]');
  assert.equal(canonicalize('\u2028\u0007"\\'), '"\u2028\\u0007\\"\\\\"');
  assert.throws(() => canonicalize({ x: Number.NaN }), /cannot hold NaN/);
});

test('the frontier\'s root equals the RFC 6962 recursive root at every size', () => {
  const f = new MerkleFrontier();
  assert.ok(f.root().equals(EMPTY_ROOT));
  for (let n = 1; n <= leaves.length; n++) {
    f.append(leaves[n - 1]);
    assert.ok(f.root().equals(rootOf(leaves, 0, n)), `size ${n}`);
  }
  const copy = MerkleFrontier.parse(f.serialize());
  copy.append(leafHash('one more'));
  assert.ok(copy.root().equals(rootOf([...leaves, leafHash('one more')])));
  // Spot-check the definition itself: three leaves are (0,1) then 2.
  assert.ok(rootOf(leaves, 0, 3).equals(nodeHash(nodeHash(leaves[0], leaves[1]), leaves[2])));
});

test('inclusion proofs verify for every leaf of every size, and fail for the wrong leaf or root', () => {
  for (let n = 1; n <= 33; n++) {
    const tree = leaves.slice(0, n);
    const root = rootOf(tree);
    for (let i = 0; i < n; i++) {
      const proof = inclusionProof(tree, i);
      assert.ok(verifyInclusion(tree[i], i, n, proof, root), `leaf ${i} of ${n}`);
      assert.ok(!verifyInclusion(leaves[69], i, n, proof, root));
    }
  }
});

test('consistency proofs verify for every m < n, and fail for a rewritten prefix', () => {
  for (let n = 1; n <= 40; n++) {
    for (let m = 1; m <= n; m++) {
      const proof = consistencyProof(leaves, m, n);
      assert.ok(verifyConsistency(m, n, rootOf(leaves, 0, m), rootOf(leaves, 0, n), proof), `${m} → ${n}`);
      if (m < n) {
        const forged = [...leaves.slice(0, m - 1), leafHash('forged'), ...leaves.slice(m, n)];
        assert.ok(!verifyConsistency(m, n, rootOf(leaves, 0, m), rootOf(forged), consistencyProof(forged, m)), `forged ${m} → ${n}`);
      }
    }
  }
});

test('the level-by-level tree gives the RFC root and the same proofs as the recursive definition', () => {
  for (let n = 1; n <= 70; n++) {
    const tree = new MerkleTree(leaves.slice(0, n));
    assert.ok(tree.root().equals(rootOf(leaves, 0, n)), `root of ${n}`);
    for (let i = 0; i < n; i++) assert.deepEqual(tree.proof(i), inclusionProof(leaves.slice(0, n), i), `proof ${i} of ${n}`);
  }
});

test('a tree over a pruned prefix (its frontier) and the later leaves has the full root and the same proofs', () => {
  for (let n = 1; n <= 40; n++) {
    const full = new MerkleTree(leaves.slice(0, n));
    for (let p = 0; p <= n; p++) {
      const base = new MerkleFrontier();
      for (const leaf of leaves.slice(0, p)) base.append(leaf);
      const pruned = new MerkleTree(leaves.slice(p, n), base);
      assert.ok(pruned.root().equals(full.root()), `root, size ${n}, pruned ${p}`);
      for (let i = p; i < n; i++) assert.deepEqual(pruned.proof(i), full.proof(i), `proof of ${i}, size ${n}, pruned ${p}`);
      // A pruned leaf's proof is refused when it needs nodes inside the frontier, and right otherwise.
      for (let i = 0; i < p; i++) {
        let proof: Buffer[] | undefined;
        try {
          proof = pruned.proof(i);
        } catch (err) {
          assert.match((err as Error).message, /was pruned/);
        }
        if (proof) assert.deepEqual(proof, full.proof(i), `pruned leaf ${i}, size ${n}, pruned ${p}`);
      }
    }
  }
});
