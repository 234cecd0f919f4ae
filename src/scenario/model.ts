// The scenario: what a run does, independent of where it runs (emulator or lab).
//
// Steps are a union on `op`. Channel-scoped steps default to channel 0.

import { z } from 'zod';
import { GAP_CHOICES } from '../vmbus/choices.ts';
import { U64_MAX } from '../vmbus/tx-id.ts';
import { resolveDevicePath } from '../device-api/load.ts';

const count = z.number().int().min(1).max(100_000);
// The device's own bounds (its module's messageSize) are checked once the module is
// loaded (loader.ts); the schema only keeps sizes sane.
const size = z.number().int().min(1).max(1 << 20);
const ms = z.number().int().min(0).max(3_600_000);
const channelRef = z.number().int().min(0).default(0);
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'use letters, digits, dot, dash or underscore');

// The drivers a run uses, and its device module's path, live in devices-mode.ts (no zod there,
// so the emulator's worker threads need not load it); re-exported for everyone else.
import { DEVICES_MODES, type DevicesMode } from './devices-mode.ts';
export { DEVICES_MODES, cGuestOf, devicePath, usesCDrivers, type DevicesMode } from './devices-mode.ts';

export const StepSchema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('guest-send'),
    channel: channelRef,
    count,
    size,
    mode: z.enum(['inline', 'deferred', 'hold']).default('inline'),
    /** ms the VSP holds each request (mode hold) */
    hold: ms.default(0),
  }),
  z.strictObject({
    op: z.literal('host-send'),
    channel: channelRef,
    count,
    size,
    /** ms the guest holds each transaction before completing it */
    hold: ms.default(0),
  }),
  z.strictObject({ op: z.literal('notify'), channel: channelRef, dir: z.enum(['g2h', 'h2g']), count, size }),
  z.strictObject({ op: z.literal('run'), ms: ms }),
  z.strictObject({ op: z.literal('settle') }),
  z.strictObject({ op: z.literal('save') }),
  z.strictObject({
    op: z.literal('restore'),
    /**
     * Channels whose VSP refuses its saved state at this restore: the host falls back to
     * rescinding them and offering them anew, as openvmm's vmbus server does.
     */
    fail: z.array(channelRef).max(64).optional(),
  }),
  z.strictObject({ op: z.literal('pause') }),
  z.strictObject({ op: z.literal('resume') }),
  z.strictObject({ op: z.literal('checkpoint'), name }),
  z.strictObject({ op: z.literal('apply-checkpoint'), name }),
  z.strictObject({ op: z.literal('migrate'), to: name }),
  /**
   * The host rescinds the channel now, whatever is in flight on it, and offers it anew;
   * the guest closes the old instance and opens the new one (PROTOCOL.md, "Rescind and
   * re-offer").
   */
  z.strictObject({
    op: z.literal('rescind'),
    channel: channelRef,
    /** false: the new instance stays offered and not opened until a `guest-open` step */
    reopen: z.boolean().default(true),
  }),
  /**
   * The guest opens the channel again: the new instance of one rescinded with
   * `reopen: false`, or one it closed itself (`guest-close`).
   */
  z.strictObject({ op: z.literal('guest-open'), channel: channelRef }),
  /**
   * The guest closes the channel, whatever is in flight on it; the host's channel goes
   * Closed and the VSP retires what it had outstanding (PROTOCOL.md, "Guest close"). The
   * channel stays offered and closed until a `guest-open` step.
   */
  z.strictObject({ op: z.literal('guest-close'), channel: channelRef }),
]);
export type Step = z.infer<typeof StepSchema>;
export type StepOp = Step['op'];

export const ChannelSchema = z.strictObject({
  id: z.number().int().min(0).max(255),
  /** data pages per ring (4 KiB each) */
  g2hPages: z.number().int().min(1).max(512).default(4),
  h2gPages: z.number().int().min(1).max(512).default(4),
  /** incoming transaction quota of the VSP; 0 = none */
  quota: z.number().int().min(0).max(100_000).default(0),
  /**
   * The first transaction id on this channel, each way: the protocol's tx and the ring's
   * trans_id. Both are u64s; an id above 2^53 - 1 is written as a decimal string (a YAML
   * or JSON number that large is rounded before we see it).
   */
  firstTx: z
    .union([
      z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
      z.string().regex(/^[1-9][0-9]{0,19}$/, 'a decimal u64 without leading zeros').refine((s) => BigInt(s) <= U64_MAX, 'at most 2^64 - 1'),
    ])
    .optional(),
  /**
   * The VSP sets VMBUS_SERVER_CHANNEL_INIT_FLAG_FORCE_NEW_CHANNEL: after every restore
   * (restore, migration, checkpoint) the channel is offered anew and the old instance
   * rescinded, its saved state abandoned.
   */
  forceNewChannel: z.boolean().optional(),
});
export type ChannelSpec = z.infer<typeof ChannelSchema>;

const choiceShape = Object.fromEntries(
  GAP_CHOICES.map((c) => [
    c.key,
    (typeof c.options[0] === 'boolean' ? z.boolean() : z.enum(c.options as [string, ...string[]])).optional(),
  ]),
);

export const ScenarioSchema = z.strictObject({
  name,
  description: z.string().optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  channels: z.union([z.number().int().min(1).max(64), z.array(ChannelSchema).min(1).max(64)]).default(1),
  /** bytes per VmbChannelSaveContinue buffer; small values exercise partial progress */
  saveBufferSize: z.number().int().min(16).max(1 << 20).default(4096),
  /** the starting host's name (migration moves between names) */
  host: name.default('host-a'),
  choices: z.strictObject(choiceShape).optional(),
  /**
   * The device module (src/device-api/device-module.ts), by path relative to this file;
   * absent: the sample device (devices/sample/device.ts).
   */
  device: z.string().min(1).optional(),
  /**
   * Which drivers run (DEVICES_MODES): the TypeScript twins, or the device's C drivers
   * compiled to WebAssembly: `c` the C VSP with the twin guest, `c-linux` / `c-windows`
   * the C VSP with the C Linux / Windows guest driver as the VM's guest (a C guest may
   * refuse what it cannot run, exit 2: the sample's Windows guest, a step that leaves every
   * channel closed)
   */
  devices: z.enum(DEVICES_MODES).default('twin'),
  /**
   * vm: the guest driver in a VM (the default). loopback: the client in the host beside
   * the VSP, as a lab's loopback job runs it: save/restore/pause act on channels only.
   */
  topology: z.enum(['vm', 'loopback']).default('vm'),
  steps: z.array(StepSchema).min(1),
});

export type ScenarioInput = z.input<typeof ScenarioSchema>;

export interface Scenario {
  name: string;
  description?: string | undefined;
  seed?: number | undefined;
  channels: ChannelSpec[];
  saveBufferSize: number;
  host: string;
  choices: Record<string, string | boolean>;
  /** the device module's absolute path; absent: the sample device (SAMPLE_DEVICE) */
  device?: string | undefined;
  devices?: DevicesMode | undefined;
  /** absent: vm (execute.ts says what loopback changes) */
  topology?: 'vm' | 'loopback' | undefined;
  steps: Step[];
  /** where it came from, for messages: file and each step's line */
  source?: { file: string; stepLines: number[] } | undefined;
}

/** Normalises the parsed document: `channels: 3` becomes three default channels. */
export function toScenario(parsed: z.infer<typeof ScenarioSchema>, source?: Scenario['source']): Scenario {
  const channels =
    typeof parsed.channels === 'number'
      ? Array.from({ length: parsed.channels }, (_, id) => ChannelSchema.parse({ id }))
      : parsed.channels;
  const choices: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(parsed.choices ?? {})) if (v !== undefined) choices[k] = v as string | boolean;
  return {
    name: parsed.name,
    description: parsed.description,
    seed: parsed.seed,
    channels,
    saveBufferSize: parsed.saveBufferSize,
    host: parsed.host,
    choices,
    device: parsed.device === undefined ? undefined : resolveDevicePath(parsed.device, source?.file),
    devices: parsed.devices,
    ...(parsed.topology === 'loopback' ? { topology: parsed.topology } : {}),
    steps: parsed.steps,
    source,
  };
}
