// The seeded schedule: the only source of choices in the emulator.
//
// Every non-deterministic choice (which runnable task goes next: a delivery on either
// side, a library queue flush, a timer) is taken from here, so the same scenario with
// the same seed gives the same trace, byte for byte. No clock and no Math.random.
//
// The generator is sfc32 seeded through splitmix32: small, fast, and its whole state is
// four 32-bit words, so a schedule can be saved and carried to another thread.

export class Schedule {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** How many choices were taken (a count for diagnostics; save points are the executor's steps). */
  taken = 0;

  constructor(seed: number, state?: readonly number[]) {
    if (state) {
      [this.a, this.b, this.c, this.d] = state as [number, number, number, number];
      return;
    }
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A choice among n alternatives (n >= 1). */
  pick(n: number): number {
    this.taken++;
    if (n <= 1) return 0;
    return this.u32() % n;
  }

  state(): number[] {
    return [this.a, this.b, this.c, this.d];
  }

  /** Continues the sequence from a `state()` taken elsewhere (a run handed to another thread). */
  restoreState(state: readonly number[]): void {
    [this.a, this.b, this.c, this.d] = state as [number, number, number, number];
  }
}
