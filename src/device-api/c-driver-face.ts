// What every face the emulator drives a C driver through (the host's CHostChannel, a C
// guest's CVmGuestBase) answers to the replay's calls. `bench check`'s model is the
// device's TypeScript twins, never its C drivers, so a C face is never asked whether a
// request is held, to complete one at a trace's word, or what its next delivery writes:
// each call is a bench bug, and says so (replayRunsTwins).

import { replayRunsTwins } from '../devices/wasm/violations.ts';

/** The replay's part of HostVsp and GuestDriver, for a face of a C driver: refused. */
export abstract class CDriverFace {
  isHeld(): boolean {
    return replayRunsTwins();
  }

  completeHeld(): boolean {
    return replayRunsTwins();
  }

  peekDelivery(): null {
    return replayRunsTwins();
  }
}
