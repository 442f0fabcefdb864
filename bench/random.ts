/**
 * Seeded randomness for benchmark data and samples, so that a run is reproducible from its seed:
 * the same seed and size give the same events, the same tree root and the same proofs asked for.
 */
import { createCipheriv, createHash } from 'node:crypto';

/** A small, fast PRNG (sfc32) for choices and sample positions; not for anything secret. */
export class Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0) {
    const digest = createHash('sha256').update(`corridor-bench/${seed}/${stream}`).digest();
    this.#a = digest.readUInt32LE(0);
    this.#b = digest.readUInt32LE(4);
    this.#c = digest.readUInt32LE(8);
    this.#d = digest.readUInt32LE(12);
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A uniform float in [0, 1). */
  next(): number {
    const a = this.#a;
    const b = this.#b;
    const c = this.#c;
    const d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    const rotated = (c << 21) | (c >>> 11);
    this.#c = (rotated + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** A uniform integer in [0, n) for n up to 2^53 (two draws when n exceeds 2^32). */
  int(n: number): number {
    if (n <= 0x1_0000_0000) return Math.floor(this.next() * n);
    return Math.floor((this.next() * 0x20_0000 + this.next()) / 0x20_0000 * n) % n;
  }

  /** A uniform bigint in [0, n), n ≤ 2^53. */
  bigint(n: bigint): bigint {
    return BigInt(this.int(Number(n)));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
}

/**
 * A deterministic stream of random-looking bytes (AES-128-CTR keyed by the seed), for salts and
 * digests: generating a million 32-byte values this way costs milliseconds, not a syscall each.
 */
export class ByteStream {
  readonly #cipher;
  #buffer: Buffer = Buffer.alloc(0);
  #offset = 0;

  constructor(seed: number, stream: string) {
    const key = createHash('sha256').update(`corridor-bench-bytes/${seed}/${stream}`).digest();
    this.#cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  }

  /** `n` fresh bytes (a copy the caller owns). */
  take(n: number): Buffer {
    if (this.#offset + n > this.#buffer.length) {
      this.#buffer = this.#cipher.update(Buffer.alloc(Math.max(n, 1 << 20)));
      this.#offset = 0;
    }
    const out = Buffer.from(this.#buffer.subarray(this.#offset, this.#offset + n));
    this.#offset += n;
    return out;
  }

  /** `n` bytes as unpadded base64url (ids, key ids). */
  base64url(n: number): string {
    return this.take(n).toString('base64url');
  }
}
