// lab/nightly: the Task Scheduler definition and the systemd pair run a command line the
// bench accepts, at 02:00, one at a time, with time to stop cleanly.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';

const xml = readFileSync('lab/nightly/bench-nightly.xml', 'utf8');
const service = readFileSync('lab/nightly/bench-nightly.service', 'utf8');
const timer = readFileSync('lab/nightly/bench-nightly.timer', 'utf8');

/** Runs the schedule's bench options with the example lab, as a dry run. */
function dryRun(options: string[]) {
  const args = options.map((a) => a.replace(/^'|'$/g, '')).map((a) => (/lab[\\/]lab\.yaml$/.test(a) ? 'lab/example.yaml' : a));
  return spawnSync(process.execPath, ['bin/bench.js', 'run', ...args, '--dry-run', '--json'], { encoding: 'utf8', timeout: 60_000 });
}

describe('nightly schedule files', () => {
  it('Task Scheduler: a daily 02:00 trigger, no second instance, elevated, and a bench command line the CLI accepts', () => {
    expect(xml).toMatch(/<StartBoundary>\d{4}-\d{2}-\d{2}T02:00:00<\/StartBoundary>/);
    expect(xml).toMatch(/<DaysInterval>1<\/DaysInterval>/);
    expect(xml).toMatch(/<MultipleInstancesPolicy>IgnoreNew<\/MultipleInstancesPolicy>/);
    expect(xml).toMatch(/<RunLevel>HighestAvailable<\/RunLevel>/);
    const args = /<Arguments>(.*)<\/Arguments>/.exec(xml)![1]!.replace(/&amp;/g, '&').replace(/&gt;/g, '>').replace(/&lt;/g, '<');
    const cmd = /node bin\\bench\.js run (.*?) \*>>/.exec(args)![1]!;
    const r = dryRun(cmd.split(' '));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(cmd).toMatch(/--nightly/);
  });

  it('systemd: a oneshot service whose ExecStart the CLI accepts, SIGTERM to stop, and a persistent 02:00 timer', () => {
    const exec = /^ExecStart=(\S+) bin\/bench\.js run (.*)$/m.exec(service)!;
    expect(exec[1]).toMatch(/node_modules\/\.bin\/node$/);
    const r = dryRun(exec[2]!.split(' '));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(service).toMatch(/^Type=oneshot$/m);
    expect(service).toMatch(/^KillSignal=SIGTERM$/m);
    expect(service).toMatch(/^SuccessExitStatus=1$/m);
    expect(timer).toMatch(/^OnCalendar=\*-\*-\* 02:00:00$/m);
    expect(timer).toMatch(/^Persistent=true$/m);
  });
});
