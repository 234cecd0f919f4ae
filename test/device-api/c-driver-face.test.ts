// A C driver's faces (the host's CHostChannel, a C guest's CVmGuestBase) refuse the
// replay's calls from one definition: bench check's model is the TypeScript twins, so a
// replay call reaching a C driver is a bench bug and must say so, not answer.

import { describe, expect, it } from 'vitest';
import { CDriverFace } from '../../src/device-api/c-driver-face.ts';
import { CHostChannel } from '../../src/device-api/c-host-channel.ts';
import { CVmGuestBase } from '../../src/device-api/c-guest-base.ts';

describe('CDriverFace', () => {
  it('is what both C faces answer the replay with', () => {
    for (const face of [CHostChannel, CVmGuestBase]) {
      expect(face.prototype).toBeInstanceOf(CDriverFace);
      for (const m of ['isHeld', 'completeHeld', 'peekDelivery'] as const) expect(face.prototype[m]).toBe(CDriverFace.prototype[m]);
    }
  });

  it('refuses every replay call, naming the twins', () => {
    const face = new (class extends CDriverFace {})();
    expect(() => face.isHeld()).toThrow(/replay \(bench check\) runs the TypeScript twins/);
    expect(() => face.completeHeld()).toThrow(/runs the TypeScript twins/);
    expect(() => face.peekDelivery()).toThrow(/runs the TypeScript twins/);
  });
});
