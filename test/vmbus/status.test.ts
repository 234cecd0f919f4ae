// NTSTATUS helpers (src/vmbus/status.ts): the two "continue" statuses of the save calls
// are not NT_SUCCESS, which is exactly the trap callers must handle.

import { describe, expect, it } from 'vitest';
import { STATUS, ntSuccess, statusName } from '../../src/vmbus/status.ts';

describe('NTSTATUS', () => {
  it('counts success and informational codes as NT_SUCCESS, warnings and errors not', () => {
    expect(ntSuccess(STATUS.SUCCESS)).toBe(true);
    expect(ntSuccess(STATUS.PENDING)).toBe(true);
    expect(ntSuccess(STATUS.BUFFER_OVERFLOW)).toBe(false);
    expect(ntSuccess(STATUS.MORE_PROCESSING_REQUIRED)).toBe(false);
    expect(ntSuccess(STATUS.BUFFER_TOO_SMALL)).toBe(false);
    expect(ntSuccess(STATUS.INVALID_PARAMETER_1)).toBe(false);
  });

  it('keeps the numeric values of the KMCL contract (SPEC-NOTES section 9)', () => {
    expect(STATUS).toMatchObject({
      BUFFER_OVERFLOW: 0x80000005,
      INVALID_PARAMETER: 0xc000000d,
      MORE_PROCESSING_REQUIRED: 0xc0000016,
      BUFFER_TOO_SMALL: 0xc0000023,
      INVALID_PARAMETER_1: 0xc00000ef,
      INVALID_PARAMETER_2: 0xc00000f0,
      INVALID_PARAMETER_3: 0xc00000f1,
      CANCELLED: 0xc0000120,
      DEVICE_REMOVED: 0xc00002b6,
    });
  });

  it('names known codes, also as signed 32-bit values, and prints unknown ones in hex', () => {
    expect(statusName(STATUS.MORE_PROCESSING_REQUIRED)).toBe('STATUS_MORE_PROCESSING_REQUIRED');
    expect(statusName(STATUS.CANCELLED | 0)).toBe('STATUS_CANCELLED');
    expect(statusName(0xc0001234)).toBe('0xc0001234');
  });
});
