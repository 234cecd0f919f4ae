// Random scenario steps for property tests (traffic both ways, notifies, time passing).
import fc from 'fast-check';

export interface StepLimits {
  guestCount: number;
  hostCount: number;
  maxSize: number;
  /** longest hold, ms */
  hold: number;
}

export function trafficStep(l: StepLimits) {
  return fc.oneof(
    fc.record({ op: fc.constant('guest-send' as const), count: fc.integer({ min: 1, max: l.guestCount }), size: fc.integer({ min: 24, max: l.maxSize }), mode: fc.constantFrom('inline' as const, 'deferred' as const, 'hold' as const), hold: fc.integer({ min: 0, max: l.hold }) }),
    fc.record({ op: fc.constant('host-send' as const), count: fc.integer({ min: 1, max: l.hostCount }), size: fc.integer({ min: 24, max: l.maxSize }), hold: fc.integer({ min: 0, max: l.hold }) }),
    fc.record({ op: fc.constant('notify' as const), dir: fc.constantFrom('g2h' as const, 'h2g' as const), count: fc.integer({ min: 1, max: 5 }), size: fc.integer({ min: 24, max: 200 }) }),
    fc.record({ op: fc.constant('run' as const), ms: fc.integer({ min: 0, max: 4 }) }),
  );
}
