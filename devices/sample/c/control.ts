// The sample Windows drivers' control IOCTLs (lab/drivers/common/sample-control.h), as
// the bench sends them to the drivers on the emulator. Numbers, not names: the shim
// hands any IOCTL to the driver, and these are the sample's own.

/** CTL_CODE(0x8A5E, function, METHOD_BUFFERED, access) */
export const SAMPLE_IOCTL = {
  command: 0x8a5ea004,
  counters: 0x8a5e6008,
  readTrace: 0x8a5e600c,
  vspExport: 0x8a5e6010,
  vspImport: 0x8a5ea014,
} as const;
