// The violation a driver call ends in, for tests that expect one (a defect caught).

import { DriverViolation } from '../../../../src/devices/wasm/violations.ts';

/** Runs `fn` and returns the DriverViolation it throws; any other error is rethrown, and a clean run fails the test. */
export function violationOf(fn: () => void): DriverViolation {
  try {
    fn();
  } catch (e) {
    if (e instanceof DriverViolation) return e;
    throw e;
  }
  throw new Error('expected a driver violation, the driver ran clean');
}
