// The C drivers and the TypeScript twins must speak the same protocol: every constant
// in lab/drivers/common/sample-protocol.h equals its twin in devices/sample/protocol.ts,
// devices/sample/save-record.ts or (for the digest) src/devices/digest.ts, and the SaveBuf
// values also equal PROTOCOL.md's table.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as protocol from '../../devices/sample/protocol.ts';
import { digestHex } from '../../src/devices/digest.ts';
import { SAVEBUF_MAGIC, SAVEBUF_SIZE, SAVEBUF_VERSION } from '../../devices/sample/save-record.ts';
import { cInt, readCDefines } from './c-header.ts';

const header = fileURLToPath(new URL('../../lab/drivers/common/sample-protocol.h', import.meta.url));
const protocolMd = fileURLToPath(new URL('../../lab/drivers/PROTOCOL.md', import.meta.url));
const defs = readCDefines(header);
const c = (name: string) => cInt(defs, name);

function guidFields(text: string): bigint[] {
  const hex = text.replace(/-/g, '');
  const fields = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16)];
  for (let i = 16; i < 32; i += 2) fields.push(hex.slice(i, i + 2));
  return fields.map((f) => BigInt('0x' + f));
}

describe('sample-protocol.h agrees with devices/sample/protocol.ts', () => {
  it('has the interface type GUID as text and as initialiser fields', () => {
    const text = defs.get('SP_INTERFACE_TYPE_GUID_STRING');
    expect(text).toEqual({ kind: 'string', value: protocol.INTERFACE_TYPE_GUID });
    const fields = defs.get('SP_INTERFACE_TYPE_GUID_FIELDS');
    expect(fields).toEqual({ kind: 'list', value: guidFields(protocol.INTERFACE_TYPE_GUID) });
  });

  it('has the version, header, maximum, completion sizes and ring pages', () => {
    expect(c('SP_PROTOCOL_VERSION')).toBe(BigInt(protocol.PROTOCOL_VERSION));
    expect(c('SP_HEADER_SIZE')).toBe(BigInt(protocol.HEADER_SIZE));
    expect(c('SP_MAX_MESSAGE_SIZE')).toBe(BigInt(protocol.MAX_MESSAGE_SIZE));
    expect(c('SP_COMPLETION_SIZE')).toBe(BigInt(protocol.COMPLETION_SIZE));
    expect(c('SP_DEFAULT_RING_PAGES')).toBe(BigInt(protocol.DEFAULT_RING_PAGES));
  });

  it('has the message types and the completion flag', () => {
    expect(c('SP_MSG_REQUEST')).toBe(BigInt(protocol.MsgType.Request));
    expect(c('SP_MSG_HOST_TRANSACTION')).toBe(BigInt(protocol.MsgType.HostTransaction));
    expect(c('SP_MSG_NOTIFY')).toBe(BigInt(protocol.MsgType.Notify));
    expect(c('SP_MSG_COMPLETION_FLAG')).toBe(BigInt(protocol.MsgType.CompletionFlag));
  });

  it('has the completion modes', () => {
    expect(c('SP_MODE_INLINE')).toBe(BigInt(protocol.CompletionMode.Inline));
    expect(c('SP_MODE_DEFERRED')).toBe(BigInt(protocol.CompletionMode.Deferred));
    expect(c('SP_MODE_HOLD')).toBe(BigInt(protocol.CompletionMode.Hold));
  });

  it('has the statuses, and its failure rule picks the same transactions as statusFor', () => {
    expect(c('SP_STATUS_SUCCESS')).toBe(BigInt(protocol.Status.Success));
    expect(c('SP_STATUS_DATA_ERROR')).toBe(BigInt(protocol.Status.DataError));
    expect(c('SP_STATUS_INVALID_DEVICE_STATE')).toBe(BigInt(protocol.Status.InvalidDeviceState));
    expect(c('SP_STATUS_CANCELLED')).toBe(BigInt(protocol.Status.Cancelled));
    const modulus = Number(c('SP_FAIL_MODULUS'));
    const remainder = Number(c('SP_FAIL_REMAINDER'));
    for (let tx = 0; tx < 100; tx++) {
      const failsInC = tx % modulus === remainder;
      expect(protocol.statusFor(tx, true) === protocol.Status.InvalidDeviceState).toBe(failsInC);
    }
  });

  it('has the FNV-1a offset basis and prime that digest.ts computes with', () => {
    const basis = c('SP_FNV_OFFSET_BASIS');
    const prime = c('SP_FNV_PRIME');
    // The digest of nothing is the offset basis; one byte is one xor and one multiply.
    expect(digestHex(new Uint8Array(0))).toBe(basis.toString(16).padStart(16, '0'));
    for (const byte of [0x00, 0x61, 0xff]) {
      const expected = ((basis ^ BigInt(byte)) * prime) & 0xffffffffffffffffn;
      expect(digestHex(Uint8Array.of(byte))).toBe(expected.toString(16).padStart(16, '0'));
    }
  });

  it('has the SaveBuf magic, version and size of save-record.ts and PROTOCOL.md', () => {
    expect(c('SP_SAVEBUF_MAGIC')).toBe(BigInt(SAVEBUF_MAGIC));
    expect(c('SP_SAVEBUF_VERSION')).toBe(BigInt(SAVEBUF_VERSION));
    expect(c('SP_SAVEBUF_SIZE')).toBe(BigInt(SAVEBUF_SIZE));
    const md = readFileSync(protocolMd, 'utf8');
    const magic = /magic `0x([0-9a-fA-F]+)`/.exec(md);
    const version = /\|\s*0x04\s*\|\s*u16\s*\|\s*version (\d+)\s*\|/.exec(md);
    const size = /`BytesNeeded = (\d+)`/.exec(md);
    expect(magic && version && size, 'PROTOCOL.md SaveBuf table not found').toBeTruthy();
    expect(c('SP_SAVEBUF_MAGIC')).toBe(BigInt('0x' + magic![1]!));
    expect(c('SP_SAVEBUF_VERSION')).toBe(BigInt(version![1]!));
    expect(c('SP_SAVEBUF_SIZE')).toBe(BigInt(size![1]!));
    // "VSPS" in ASCII, read as a little-endian u32.
    expect(Buffer.from('VSPS').readUInt32LE(0)).toBe(Number(c('SP_SAVEBUF_MAGIC')));
  });

  it('knows every constant the header defines (none left uncompared)', () => {
    const compared = new Set([
      'SP_INTERFACE_TYPE_GUID_STRING', 'SP_INTERFACE_TYPE_GUID_FIELDS', 'SP_PROTOCOL_VERSION',
      'SP_HEADER_SIZE', 'SP_MAX_MESSAGE_SIZE', 'SP_COMPLETION_SIZE', 'SP_DEFAULT_RING_PAGES',
      'SP_MSG_REQUEST', 'SP_MSG_HOST_TRANSACTION', 'SP_MSG_NOTIFY', 'SP_MSG_COMPLETION_FLAG',
      'SP_MODE_INLINE', 'SP_MODE_DEFERRED', 'SP_MODE_HOLD', 'SP_STATUS_SUCCESS',
      'SP_STATUS_DATA_ERROR', 'SP_STATUS_INVALID_DEVICE_STATE', 'SP_STATUS_CANCELLED', 'SP_FAIL_MODULUS',
      'SP_FAIL_REMAINDER', 'SP_FNV_OFFSET_BASIS', 'SP_FNV_PRIME', 'SP_SAVEBUF_MAGIC',
      'SP_SAVEBUF_VERSION', 'SP_SAVEBUF_SIZE',
    ]);
    // C-only values: sizes of the C API itself, not protocol facts.
    const cOnly = new Set(['SP_PAGE_SIZE', 'SP_RING_PADDING_MAX']);
    const unknown = [...defs.keys()].filter((k) => !compared.has(k) && !cOnly.has(k));
    expect(unknown).toEqual([]);
    expect(c('SP_RING_PADDING_MAX')).toBe(7n); // PROTOCOL.md: "up to 7 zero bytes"
  });
});
