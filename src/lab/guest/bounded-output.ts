// Collects a stream's output up to a byte limit. Past the limit the bytes are still
// read (so the remote side never blocks on a full window) but dropped, and the total is
// counted so the result can say how much was cut. Memory stays bounded by the limit.

export class BoundedOutput {
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #seen = 0;

  constructor(limitBytes: number) {
    if (!Number.isInteger(limitBytes) || limitBytes < 0) throw new RangeError(`output limit must be a whole number of bytes ≥ 0, got ${limitBytes}`);
    this.#limit = limitBytes;
  }

  push(chunk: Buffer): void {
    this.#seen += chunk.length;
    const room = this.#limit - this.#kept;
    if (room <= 0) return;
    // Copy a cut slice: keeping a view would pin the whole (possibly large) chunk.
    const part = chunk.length <= room ? chunk : Buffer.from(chunk.subarray(0, room));
    this.#chunks.push(part);
    this.#kept += part.length;
  }

  /** Bytes the stream produced, kept or not. */
  get totalBytes(): number {
    return this.#seen;
  }

  get truncated(): boolean {
    return this.#seen > this.#kept;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#chunks, this.#kept);
  }
}
