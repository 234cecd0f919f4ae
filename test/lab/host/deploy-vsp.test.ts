// VSP deployment on a host: test signing first, then pnputil; removal at cleanup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTestSigning, deployVsp, parseTestSigning, publishedNames, removeVsp, VspDeployError } from '../../../src/lab/deploy-vsp.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, type StandinHost } from './standin.ts';

const INF = 'C:\\bench\\drivers\\vmbusbench_vsp.inf';

describe('bcdedit and pnputil output', () => {
  it('finds testsigning Yes in the boot entry, and treats its absence as off', () => {
    expect(parseTestSigning(['identifier              {current}', 'testsigning             Yes'])).toEqual({ enabled: true });
    expect(parseTestSigning(['testsigning             No'])).toMatchObject({ enabled: false });
    expect(parseTestSigning(['identifier {current}', 'nx OptIn'])).toMatchObject({ enabled: false, reason: expect.stringMatching(/no testsigning entry/) });
  });
  it('reads published names from pnputil', () => {
    expect(publishedNames(['Driver package added successfully.', 'Published Name:         oem42.inf'])).toEqual(['oem42.inf']);
  });
});

describe.skipIf(!pwsh)(`VSP deployment on the stand-in ${pwshLabel}`, { timeout: 120_000 }, () => {
  let a: StandinHost;
  let hv: HyperV;
  beforeAll(() => {
    a = newStandinHost('hostA');
    hv = new HyperV(a.ctx);
  });
  afterAll(async () => {
    await disposeHost(a);
  });

  it('installs the package, verifies it is in the driver store, and removes it', async () => {
    await initHost(a, { testSigning: true, files: [INF] });
    expect(await checkTestSigning(hv)).toEqual({ enabled: true });
    const d = await deployVsp(hv, INF);
    expect(d.publishedName).toMatch(/^oem\d+\.inf$/);
    expect((await a.state()).Drivers).toEqual([d.publishedName]);
    await removeVsp(hv, d.publishedName);
    expect((await a.state()).Drivers).toEqual([]);
    await removeVsp(hv, d.publishedName); // already gone: fine
  });

  it('refuses to deploy when test signing is off, saying how to turn it on', async () => {
    await initHost(a, { testSigning: false, files: [INF] });
    const e = await deployVsp(hv, INF).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VspDeployError);
    expect((e as Error).message).toMatch(/test signing is off.*bcdedit \/set testsigning on/);
    expect((await a.state()).Drivers).toEqual([]);
  });

  it('reports pnputil\'s failure with its exit code', async () => {
    await initHost(a, { testSigning: true });
    await expect(deployVsp(hv, 'C:\\missing\\x.inf')).rejects.toThrow(/pnputil \/add-driver exited with 2: .*cannot find the file/);
  });
});
