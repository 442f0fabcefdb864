/**
 * A minimal proto3 writer for the few messages the hub writes thousands of times a second (audit
 * leaves, deliveries): protobuf-es's reflective `create` + `toBinary` cost tens of microseconds per
 * message here, this a few. Fields must be written in field-number order, as protobuf-es writes
 * them, so the bytes are exactly `toBinary`'s; each user keeps that true with a property test
 * against `toBinary` (tests/core/audit-leaf.test.ts, tests/hub/delivery-frame.test.ts).
 *
 * Proto3 implicit presence: scalar zero values, empty strings and empty bytes are not written; a
 * sub-message ({@link ProtoWriter.message}) is written whenever it is given, empty or not, as for a
 * message field that is set.
 */
const INITIAL_CAPACITY = 256;
/** A tag of a field number below 2^28 and the varint of a length below 2^32 fit in 5 bytes each. */
const MAX_VARINT32_BYTES = 5;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/**
 * From this size a writer's buffer is its own allocation, not a slice of Node's shared 8 KB
 * pool: a delivery frame kept for an agency's other subscriptions would otherwise keep the
 * whole pool block alive, with other frames' garbage in it.
 */
const OWN_ALLOCATION_BYTES = 1024;

function allocate(bytes: number): Buffer {
  return bytes >= OWN_ALLOCATION_BYTES ? Buffer.allocUnsafeSlow(bytes) : Buffer.allocUnsafe(bytes);
}

/** Bytes of the varint of a non-negative value below 2^31. */
function varintSize(value: number): number {
  let size = 1;
  for (let rest = value >>> 7; rest > 0; rest >>>= 7) size++;
  return size;
}

export class ProtoWriter {
  #buffer: Buffer;
  #position: number;
  readonly #start: number;

  /**
   * @param capacity bytes to allocate up front (the writer grows as needed; a good estimate
   *   saves the copies of growing).
   * @param headroom bytes kept free before the message, so that {@link finishAsField} can put the
   *   field's tag and length in front of it without copying the message.
   */
  constructor(capacity = INITIAL_CAPACITY, headroom = 0) {
    this.#start = headroom;
    this.#position = headroom;
    this.#buffer = allocate(headroom + Math.max(capacity, 16));
  }

  varint(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) return this;
    this.#tag(field, 0);
    if (typeof value === 'number' && value > 0 && value <= 0x7fffffff) this.#smallVarint(value);
    else if (typeof value === 'number' && value > 0 && Number.isSafeInteger(value)) this.#safeVarint(value);
    else if (typeof value === 'bigint' && value > 0n && value <= MAX_SAFE) this.#safeVarint(Number(value));
    else this.#bigVarint(BigInt.asUintN(64, BigInt(value)));
    return this;
  }

  string(field: number, value: string | undefined): this {
    if (value === undefined || value === '') return this;
    return this.#string(field, value);
  }

  /** A repeated string field: every element is written, empty ones too. */
  strings(field: number, values: readonly string[]): this {
    for (const value of values) this.#string(field, value);
    return this;
  }

  bytes(field: number, value: Uint8Array | undefined): this {
    if (value === undefined || value.byteLength === 0) return this;
    return this.#lengthDelimited(field, value);
  }

  /** One bytes field whose value is the concatenation of `parts` (not concatenated first). */
  bytesOf(field: number, parts: readonly Uint8Array[]): this {
    let length = 0;
    for (const part of parts) length += part.byteLength;
    if (length === 0) return this;
    return this.#lengthDelimited(field, ...parts);
  }

  /** A set sub-message field: written even when `encoded` is empty. */
  message(field: number, encoded: Uint8Array): this {
    return this.#lengthDelimited(field, encoded);
  }

  /** The message written so far. The writer must not be used after. */
  finish(): Uint8Array {
    return this.#buffer.subarray(this.#start, this.#position);
  }

  /**
   * The message written so far as field `field` (length-delimited) of an enclosing message that
   * has no other field: tag, length, message. Needs a headroom of at least 10 bytes.
   */
  finishAsField(field: number): Uint8Array {
    const end = this.#position;
    const length = end - this.#start;
    const tag = (field << 3) | 2;
    const begin = this.#start - varintSize(tag) - varintSize(length);
    if (begin < 0) throw new RangeError(`finishAsField needs ${this.#start - begin} bytes of headroom, the writer has ${this.#start}`);
    this.#position = begin;
    this.#smallVarint(tag);
    this.#smallVarint(length);
    return this.#buffer.subarray(begin, end);
  }

  /** Tag, length and value of a length-delimited field, whatever its length. */
  #lengthDelimited(field: number, ...parts: readonly Uint8Array[]): this {
    let length = 0;
    for (const part of parts) length += part.byteLength;
    this.#tag(field, 2);
    this.#smallVarint(length);
    this.#reserve(length);
    for (const part of parts) {
      this.#buffer.set(part, this.#position);
      this.#position += part.byteLength;
    }
    return this;
  }

  #string(field: number, value: string): this {
    const length = Buffer.byteLength(value, 'utf8');
    this.#tag(field, 2);
    this.#smallVarint(length);
    this.#reserve(length);
    this.#position += this.#buffer.write(value, this.#position, length, 'utf8');
    return this;
  }

  #reserve(more: number): void {
    const needed = this.#position + more;
    if (needed <= this.#buffer.byteLength) return;
    const grown = allocate(Math.max(needed, 2 * this.#buffer.byteLength));
    this.#buffer.copy(grown, 0, 0, this.#position);
    this.#buffer = grown;
  }

  #tag(field: number, wireType: number): void {
    this.#smallVarint((field << 3) | wireType);
  }

  /** A varint of a non-negative value below 2^31. */
  #smallVarint(value: number): void {
    this.#reserve(MAX_VARINT32_BYTES);
    let rest = value;
    while (rest > 0x7f) {
      this.#buffer[this.#position++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    this.#buffer[this.#position++] = rest;
  }

  /** A varint of a positive safe integer (milliseconds since the epoch), without a BigInt. */
  #safeVarint(value: number): void {
    this.#reserve(8);
    let rest = value;
    while (rest > 0x7f) {
      this.#buffer[this.#position++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#position++] = rest;
  }

  #bigVarint(value: bigint): void {
    this.#reserve(10);
    let rest = value;
    while (rest > 0x7fn) {
      this.#buffer[this.#position++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.#buffer[this.#position++] = Number(rest);
  }
}
