// NTSTATUS values that appear in the KMCL contract (SPEC-NOTES section 9).
//
// KMCL calls return these and do not throw. Two of them are traps: BUFFER_OVERFLOW
// (SaveContinue wrote some, more remains) and MORE_PROCESSING_REQUIRED
// (RestoreFromBuffer wants the next chunk) mean "continue", yet NT_SUCCESS is false for
// both. Callers must test for them before testing ntSuccess.

export const STATUS = {
  SUCCESS: 0x00000000,
  PENDING: 0x00000103,
  BUFFER_OVERFLOW: 0x80000005,
  UNSUCCESSFUL: 0xc0000001,
  INVALID_PARAMETER: 0xc000000d,
  MORE_PROCESSING_REQUIRED: 0xc0000016,
  BUFFER_TOO_SMALL: 0xc0000023,
  /** Not a KMCL code: the sample protocol's status for a malformed request (devices/sample/protocol.ts). */
  DATA_ERROR: 0xc000003e,
  INVALID_PARAMETER_1: 0xc00000ef,
  INVALID_PARAMETER_2: 0xc00000f0,
  INVALID_PARAMETER_3: 0xc00000f1,
  INVALID_PARAMETER_5: 0xc00000f3,
  CANCELLED: 0xc0000120,
  INVALID_DEVICE_STATE: 0xc0000184,
  DEVICE_REMOVED: 0xc00002b6,
} as const;

export type NtStatus = number;

/** NT_SUCCESS: severity success or informational (the top bit clear). */
export function ntSuccess(status: NtStatus): boolean {
  return (status | 0) >= 0;
}

/** An NTSTATUS as 0x and 8 hex digits. */
export function ntStatusHex(status: NtStatus): string {
  return `0x${(status >>> 0).toString(16).padStart(8, '0')}`;
}

export function statusName(status: NtStatus): string {
  for (const [name, value] of Object.entries(STATUS)) if (value === status >>> 0) return `STATUS_${name}`;
  return ntStatusHex(status);
}
