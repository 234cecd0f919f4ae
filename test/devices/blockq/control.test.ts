// blockq's control (devices/blockq/control.ts): its own verbs, counter names and instance
// GUID on the shared shape (src/device-api/control-lines.ts), and what its VSP cannot do
// refused before a line is sent; blockq-ctl's argument vectors, as the host's PowerShell
// runs them (through the one quoting function).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import blockq from '../../../devices/blockq/device.ts';
import { blockqControl, channel, channelInstance, command, counters } from '../../../devices/blockq/control.ts';
import { checkDeviceModule } from '../../../src/device-api/load.ts';
import { native, script } from '../../../src/lab/host-shell/command.ts';
import { quote } from '../../../src/lab/host-shell/quote.ts';
import { display } from '../../../src/lab/host-shell/render.ts';

describe('blockq\'s control', () => {
  it('is the module\'s control, with blockq-ctl.exe as its Windows tool', () => {
    expect(blockq.control).toBe(blockqControl);
    expect(checkDeviceModule(blockq)).toBeNull();
    expect(blockqControl.tool.program).toBe('C:\\bench\\bin\\blockq-ctl.exe');
  });

  it('names for a Linux guest\'s unbind the driver its module registers: KBUILD_MODNAME, the module Kbuild builds', () => {
    // A real lab's guest-close writes the device to /sys/bus/vmbus/drivers/<this>/unbind:
    // another name there finds no driver, and the step times out on the guest.
    const kbuild = readFileSync('devices/blockq/c/guest-linux/Kbuild', 'utf8');
    const main = readFileSync('devices/blockq/c/guest-linux/bq_guest_main.c', 'utf8');
    expect(main).toMatch(/static struct hv_driver \w+ = \{\s*\.name = KBUILD_MODNAME,/);
    const module = /^obj-m := (\w+)\.o$/m.exec(kbuild)?.[1];
    expect(module).toBeDefined();
    expect(blockqControl.guestUnbind).toEqual({ linuxDriver: module });
  });

  it('gives blockq-ctl\'s argument vectors (c/tool/blockq-ctl.c\'s usage), the line as one argument', () => {
    const { args } = blockqControl.tool;
    expect(args({ verb: 'command', who: 'vsp', line: 'event 5 200 1 ch=0' })).toEqual(['vsp', 'command', 'event 5 200 1 ch=0']);
    expect(args({ verb: 'counters', who: 'vsp' })).toEqual(['vsp', 'counters']);
    expect(args({ verb: 'convert-etl', etl: 'C:\\w\\vsp.etl', jsonl: 'C:\\w\\vsp.etl.jsonl' })).toEqual(['etl2jsonl', 'C:\\w\\vsp.etl', 'C:\\w\\vsp.etl.jsonl']);
  });

  it('refuses the verbs of a Windows guest driver or loopback client, which blockq has not', () => {
    const { args } = blockqControl.tool;
    expect(() => args({ verb: 'command', who: 'guest', line: 'request 1 64 0 0 ch=0' })).toThrow(/no Windows guest driver answers `command`/);
    expect(() => args({ verb: 'counters', who: 'guest' })).toThrow(/no Windows guest driver/);
    expect(() => args({ verb: 'trace', who: 'guest', file: 'C:\\w\\t.jsonl' })).toThrow(/no Windows guest driver answers `trace`/);
  });

  it('property: a command line reaches the host\'s PowerShell as one quoted argument of the tool, whatever it holds', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (line) => {
      const argv = blockqControl.tool.args({ verb: 'command', who: 'vsp', line });
      expect(argv).toEqual(['vsp', 'command', line]);
      const text = display(script([native(blockqControl.tool.program, argv)]));
      expect(text).toContain(`& ${quote('C:\\bench\\bin\\blockq-ctl.exe')} ${quote('vsp')} ${quote('command')} ${quote(line)} |`);
    }));
  });

  it('sends its traffic verbs (request, event, note) to the driver that sends', () => {
    expect(command({ op: 'guest-send', channel: 2, count: 3, size: 64, mode: 'hold', hold: 7 })).toEqual({ to: 'guest', line: 'request 3 64 2 7 ch=2' });
    expect(command({ op: 'host-send', channel: 0, count: 5, size: 200, hold: 1 })).toEqual({ to: 'vsp', line: 'event 5 200 1 ch=0' });
    expect(command({ op: 'notify', channel: 1, dir: 'g2h', count: 1, size: 32 })).toEqual({ to: 'guest', line: 'note 1 32 ch=1' });
  });

  it('reads the VSP\'s Events and replies, and the guest\'s Requests and completions', () => {
    const lines = ['trace_seq=9 trace_dropped=0', 'ch=4 events_sent=6 replies=5 requests_sent=2 completions=1'];
    expect(counters('vsp', lines)).toEqual({ traceSeq: 9, channels: new Map([[4, { sent: 6, completed: 5 }]]) });
    expect(counters('guest', lines)).toEqual({ traceSeq: 9, channels: new Map([[4, { sent: 2, completed: 1 }]]) });
  });

  it('offers each channel with an id whose last 8 hex digits are its number', () => {
    expect(channelInstance(0x1f)).toBe('5b1e7a20-3c9d-4f61-8a0b-7e440000001f');
  });

  it('writes its VSP\'s channel commands, rescind among them, and refuses the ones it lacks (pause, a FORCE_NEW_CHANNEL open)', () => {
    expect(channel({ op: 'open', ch: 1, instance: channelInstance(1), ringPages: 4, loopback: true })).toBe('open 1 5b1e7a20-3c9d-4f61-8a0b-7e4400000001 loopback ring-pages=4');
    expect(channel({ op: 'save', ch: 1 })).toBe('save ch=1');
    expect(() => channel({ op: 'open', ch: 1, instance: 'x', ringPages: 4, loopback: false, forceNewChannel: true })).toThrow(/no force-new-channel/);
    expect(channel({ op: 'rescind', ch: 1 })).toBe('rescind ch=1');
    expect(() => channel({ op: 'pause', ch: 1 })).toThrow(/no `pause` command/);
  });
});
