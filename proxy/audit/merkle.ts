// RFC 6962 / RFC 9162 Merkle tree hashing over the audit log's leaves: leaf = SHA-256(0x00 ‖ bytes),
// node = SHA-256(0x01 ‖ left ‖ right), the tree split at the largest power of two below its size.
// A signed root over the first N leaves lets anyone who holds it detect a rewritten or truncated log;
// consistency proofs show that a later checkpoint extends an earlier one.
import { createHash } from 'node:crypto';

export type Hash = Buffer;

const LEAF = Buffer.from([0x00]);
const NODE = Buffer.from([0x01]);

/** The leaf hash of a record's canonical bytes. */
export function leafHash(bytes: Buffer | string): Hash {
  return createHash('sha256').update(LEAF).update(bytes).digest();
}

/** An interior node's hash. */
export function nodeHash(left: Hash, right: Hash): Hash {
  return createHash('sha256').update(NODE).update(left).update(right).digest();
}

/** SHA-256 of nothing: the root of the empty tree. */
export const EMPTY_ROOT: Hash = createHash('sha256').digest();

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The root over leaf hashes, by the RFC's recursive definition (used by tests and by verify). */
export function rootOf(leaves: readonly Hash[], from = 0, to = leaves.length): Hash {
  const n = to - from;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[from];
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(rootOf(leaves, from, from + k), rootOf(leaves, from + k, to));
}

/**
 * The tree kept as its frontier: the roots of the perfect subtrees that make up the first `size`
 * leaves (one per set bit of size, largest first). Appending is O(log n), and so is the root.
 */
export class MerkleFrontier {
  private readonly stack: { height: number; hash: Hash }[] = [];
  size = 0;

  append(leaf: Hash): void {
    let node = { height: 0, hash: leaf };
    while (this.stack.length > 0 && this.stack[this.stack.length - 1].height === node.height) {
      const left = this.stack.pop()!;
      node = { height: node.height + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.stack.push(node);
    this.size++;
  }

  /** The frontier as text, for a store that verifies incrementally across batches. */
  serialize(): string {
    return JSON.stringify({ size: this.size, stack: this.stack.map((n) => [n.height, n.hash.toString('hex')]) });
  }

  /** A frontier from serialize()'s text. */
  static parse(text: string): MerkleFrontier {
    const { size, stack } = JSON.parse(text) as { size: number; stack: [number, string][] };
    const f = new MerkleFrontier();
    f.size = size;
    for (const [height, hash] of stack) f.stack.push({ height, hash: Buffer.from(hash, 'hex') });
    return f;
  }

  /** A copy that can grow on its own. */
  clone(): MerkleFrontier {
    return MerkleFrontier.parse(this.serialize());
  }

  /**
   * The frontier's nodes with their place in the tree: the perfect subtrees, largest first, that
   * cover leaves 0..size-1. They are all of the pruned prefix a tree needs to prove later leaves.
   */
  nodes(): { height: number; index: number; hash: Hash }[] {
    let start = 0;
    return this.stack.map(({ height, hash }) => {
      const node = { height, index: start / 2 ** height, hash };
      start += 2 ** height;
      return node;
    });
  }

  /** The RFC 6962 root over every leaf appended so far. */
  root(): Hash {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let acc = this.stack[this.stack.length - 1].hash;
    for (let i = this.stack.length - 2; i >= 0; i--) acc = nodeHash(this.stack[i].hash, acc);
    return acc;
  }
}

/**
 * The whole tree, level by level, for many inclusion proofs at once. Carrying an unpaired last node
 * up unchanged gives exactly the RFC 6962 tree (its split at the largest power of two), so each
 * proof is read off the levels in O(log n) instead of recomputing subtrees.
 */
export class MerkleTree {
  private readonly levels: Hash[][];

  /**
   * `leaves` follow `base` (the frontier of a pruned prefix, if any): the pruned leaves' slots stay
   * empty and the frontier's nodes stand in for them, which is all a proof of a later leaf reads.
   */
  constructor(leaves: readonly Hash[], base?: MerkleFrontier) {
    const seeded = new Map<number, { index: number; hash: Hash }[]>();
    for (const n of base?.nodes() ?? []) seeded.set(n.height, [...(seeded.get(n.height) ?? []), n]);
    const offset = base?.size ?? 0;
    const first: Hash[] = new Array(offset + leaves.length);
    for (let i = 0; i < leaves.length; i++) first[offset + i] = leaves[i];
    this.levels = [first];
    for (const n of seeded.get(0) ?? []) first[n.index] = n.hash;
    while (this.levels[this.levels.length - 1].length > 1) {
      const below = this.levels[this.levels.length - 1];
      const level: Hash[] = new Array(Math.ceil(below.length / 2));
      for (let i = 0; i < below.length; i += 2) {
        if (i + 1 >= below.length) level[i / 2] = below[i];
        else if (below[i] && below[i + 1]) level[i / 2] = nodeHash(below[i], below[i + 1]);
      }
      for (const n of seeded.get(this.levels.length) ?? []) level[n.index] = n.hash;
      this.levels.push(level);
    }
  }

  root(): Hash {
    return this.levels[this.levels.length - 1][0] ?? EMPTY_ROOT;
  }

  /** The audit path for leaf `index` (same as inclusionProof); a pruned leaf has none. */
  proof(index: number): Hash[] {
    const path: Hash[] = [];
    let i = index;
    for (let level = 0; level < this.levels.length - 1; level++) {
      const nodes = this.levels[level];
      const sibling = i ^ 1;
      if (sibling < nodes.length) {
        if (!nodes[sibling]) throw new RangeError(`leaf ${index} was pruned: its proof needs nodes only the collector holds`);
        path.push(nodes[sibling]);
      }
      i >>= 1;
    }
    return path;
  }
}

/** The audit path proving leaf `index` is in the tree of `leaves.length` leaves (RFC 9162 §2.1.3). */
export function inclusionProof(leaves: readonly Hash[], index: number, from = 0, to = leaves.length): Hash[] {
  const n = to - from;
  if (n <= 1) return [];
  const k = largestPowerOfTwoBelow(n);
  return index < k
    ? [...inclusionProof(leaves, index, from, from + k), rootOf(leaves, from + k, to)]
    : [...inclusionProof(leaves, index - k, from + k, to), rootOf(leaves, from, from + k)];
}

/** Checks an inclusion proof against a root (RFC 9162 §2.1.3.2). */
export function verifyInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) [fn, sn] = [fn >> 1, sn >> 1];
    } else {
      r = nodeHash(r, p);
    }
    [fn, sn] = [fn >> 1, sn >> 1];
  }
  return sn === 0 && r.equals(root);
}

/** The proof that the tree of size m is a prefix of the tree of size n (RFC 9162 §2.1.4). */
export function consistencyProof(leaves: readonly Hash[], m: number, n = leaves.length): Hash[] {
  if (m <= 0 || m >= n) return [];
  return subproof(leaves, m, 0, n, true);
}

function subproof(leaves: readonly Hash[], m: number, from: number, to: number, complete: boolean): Hash[] {
  const n = to - from;
  if (m === n) return complete ? [] : [rootOf(leaves, from, to)];
  const k = largestPowerOfTwoBelow(n);
  return m <= k
    ? [...subproof(leaves, m, from, from + k, complete), rootOf(leaves, from + k, to)]
    : [...subproof(leaves, m - k, from + k, to, false), rootOf(leaves, from, from + k)];
}

/** Checks that `newRoot` (size n) extends `oldRoot` (size m) (RFC 9162 §2.1.4.2). */
export function verifyConsistency(m: number, n: number, oldRoot: Hash, newRoot: Hash, proof: readonly Hash[]): boolean {
  if (m === n) return proof.length === 0 && oldRoot.equals(newRoot);
  if (m === 0 || m > n) return m === 0 && proof.length === 0;
  const path = [...proof];
  // When m is a power of two, the old root itself starts the path.
  if ((m & (m - 1)) === 0) path.unshift(oldRoot);
  let fn = m - 1;
  let sn = n - 1;
  while ((fn & 1) === 1) [fn, sn] = [fn >> 1, sn >> 1];
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if ((fn & 1) === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) [fn, sn] = [fn >> 1, sn >> 1];
    } else {
      sr = nodeHash(sr, c);
    }
    [fn, sn] = [fn >> 1, sn >> 1];
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}
