// The lab run's trace checker with propertiesOnly (what a device the model does not know
// will use): a job's result says what was not checked, passing or failing, and the
// properties still fail a broken trace. And which guest wrote a job's trace: a Linux
// template's guest driver waits for ring room, a Windows one's (KMCL) queues.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import { traceChecker } from '../../../src/run/real/lab-run.ts';
import { NOT_CHECKED } from '../../../src/check/properties-only.ts';
import { asForeignDevice } from '../../check/support/foreign-device.ts';
import { ScenarioSchema, toScenario } from '../../../src/scenario/model.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const [scenario] = await loadScenarioPaths(['bench/scenarios/02-inflight-host-transactions.yaml']);
const sink = new MemorySink();
executeScenario(scenario!, { seed: 1, sink });
const foreign = asForeignDevice(sink.events);

function traceFile(events: readonly TraceEvent[]): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lab-check-'));
  const file = join(dir, 'real.jsonl');
  writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  return { dir, file };
}

describe('traceChecker', () => {
  it('with propertiesOnly passes a foreign device and says payload and status rules were not checked', async () => {
    const { dir, file } = traceFile(foreign);
    const out = await traceChecker(dir, { propertiesOnly: true }).check({ attach: 'vm-handle' } as never, scenario!, [file], dir);
    expect(out).toMatchObject({ verdict: 'pass', notChecked: NOT_CHECKED });
    const full = await traceChecker(dir).check({ attach: 'vm-handle' } as never, scenario!, [file], dir);
    expect(full).toMatchObject({ verdict: 'diverge', divergenceClass: 'payload' });
    expect(full.notChecked).toBeUndefined();
  });

  it('with propertiesOnly fails a trace that lost a completion, and still says what it did not check', async () => {
    const i = foreign.findLastIndex((e) => e.ev === 'pkt.completion');
    const { dir, file } = traceFile(foreign.filter((_, j) => j !== i));
    const out = await traceChecker(dir, { propertiesOnly: true }).check({ attach: 'vm-handle' } as never, scenario!, [file], dir);
    expect(out).toMatchObject({ verdict: 'diverge', divergenceClass: 'lost', notChecked: NOT_CHECKED, minimizedScenario: undefined });
    expect(out.failedProperties).toContain('exactly-once-completion');
  });

  it.skipIf(!toolchain)('checks a job\'s trace as its template\'s guest wrote it: a Linux guest\'s ring-full send waits for room, a Windows guest\'s queues', async () => {
    const ringFull = toScenario(ScenarioSchema.parse({
      name: 'guest-ring-full-then-host',
      channels: [{ id: 0, g2hPages: 1, h2gPages: 1 }],
      steps: [{ op: 'guest-send', count: 60, size: 256, mode: 'deferred' }, { op: 'host-send', count: 20, size: 200, hold: 1 }, { op: 'settle' }],
    }));
    const linuxRun = new MemorySink();
    executeScenario(ringFull, { seed: 1, sink: linuxRun, devices: 'c-linux' });
    const { dir, file } = traceFile(linuxRun.events);
    const checker = traceChecker(dir, { guestOs: new Map([['ubuntu', 'linux'], ['windows', 'windows']]) });
    const job = (template: string) => ({ attach: 'vm-handle', template }) as never;
    expect(await checker.check(job('ubuntu'), ringFull, [file], dir)).toMatchObject({ verdict: 'pass' });
    expect(await checker.check(job('windows'), ringFull, [file], dir)).toMatchObject({ verdict: 'diverge' });
  }, 60_000);
});
