// The scenario where a C Linux guest's send gives up: shared by the check's tests
// (replay-send-timeout.test.ts) and a real lab job's (lab-guest-send-timeout.test.ts).
import { ScenarioSchema, toScenario, type Scenario } from '../../../src/scenario/model.ts';

/**
 * One 1-page channel whose VSP takes 4 transactions at a time and holds each 10 s: the
 * guest's 30 Requests fill the ring 18 in (4 taken, 14 in the ring), and the host reads
 * nothing more for longer than the driver's 5 s send timeout. Then two more Requests.
 */
export const stalledOn = (device?: string): Scenario => toScenario(ScenarioSchema.parse({
  name: 'guest-send-times-out',
  ...(device ? { device } : {}),
  devices: 'c-linux',
  channels: [{ id: 0, g2hPages: 1, h2gPages: 1, quota: 4 }],
  steps: [
    { op: 'guest-send', count: 30, size: 256, mode: 'hold', hold: 10_000 },
    { op: 'settle' },
    { op: 'guest-send', count: 2, size: 64 },
    { op: 'settle' },
  ],
}));
