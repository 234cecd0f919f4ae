// The run-time facts of a scenario's drivers, and why they live apart from the schema:
// an emulator worker thread loads them without zod (its start-up cost).
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { cGuestOf, devicePath, DEVICES_MODES, usesCDrivers } from '../../src/scenario/devices-mode.ts';
import * as model from '../../src/scenario/model.ts';
import { SAMPLE_DEVICE } from '../../src/device-api/load.ts';

describe('devices mode', () => {
  it('says which modes run C drivers and which C guest', () => {
    expect(DEVICES_MODES.map((d) => usesCDrivers(d))).toEqual([false, true, true, true]);
    expect(usesCDrivers(undefined)).toBe(false);
    expect(DEVICES_MODES.map((d) => cGuestOf(d))).toEqual([null, null, 'linux', 'windows']);
    expect(devicePath({})).toBe(SAMPLE_DEVICE);
    expect(devicePath({ device: '/x/device.ts' })).toBe('/x/device.ts');
  });

  it('is what the scenario model re-exports, so both names are the same functions', () => {
    expect(model.usesCDrivers).toBe(usesCDrivers);
    expect(model.devicePath).toBe(devicePath);
    expect(model.DEVICES_MODES).toBe(DEVICES_MODES);
  });

  it('lets an emulator worker load its task code without loading zod', { timeout: 60_000 }, async () => {
    const entry = new URL('../../src/run/workers/worker-tasks.ts', import.meta.url).href;
    const loaded = await new Promise<string[]>((resolve, reject) => {
      const w = new Worker(`
        const { registerHooks } = require('node:module');
        const { parentPort } = require('node:worker_threads');
        const urls = [];
        registerHooks({ load(url, ctx, next) { urls.push(url); return next(url, ctx); } });
        import(${JSON.stringify(entry)}).then(() => parentPort.postMessage(urls), (e) => parentPort.postMessage(['error: ' + e.message]));
      `, { eval: true });
      w.once('message', (m: string[]) => {
        resolve(m);
        void w.terminate();
      });
      w.once('error', reject);
    });
    expect(loaded.some((u) => u.endsWith('/src/run/workers/worker-tasks.ts'))).toBe(true);
    expect(loaded.filter((u) => u.includes('/node_modules/zod/'))).toEqual([]);
  });
});
