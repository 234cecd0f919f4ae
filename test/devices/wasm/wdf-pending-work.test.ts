// The WDF shim keeps its started timers and queued work items as they change
// (src/devices/wasm/wdf-shim.ts, `armed` and `queued`), instead of scanning every WDF
// object each time the scheduler asks when work is next due. Held here, on a small KMDF
// driver of the test's own whose IOCTLs start, stop and delete timers and queue and
// delete work items (and whose timer and work-item callbacks queue and start more):
// after any sequence of those and of the scheduler's runs, what the shim keeps is what a
// scan of its live objects finds, nextTimerDue is the scan's soonest, and timers fire
// soonest first, the one created first when two are due at once.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WindowsDriver, type WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { MemorySink } from '../../../src/trace/sink.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

// Three timers (the last periodic, 5 ms) and three work items, children of the device.
// IOCTL code = operation, input = { index, argument }. A timer's callback queues the work
// item of its index; a work item's callback starts the timer after its own, 1 ms out.
// Each callback appends its name to a log the test reads back (IOCTL 7).
const SOURCE = String.raw`
#include <ntddk.h>
#include <wdf.h>

DRIVER_INITIALIZE DriverEntry;
static EVT_WDF_DRIVER_DEVICE_ADD Add;
static EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL Ioctl;
static EVT_WDF_TIMER Tick;
static EVT_WDF_WORKITEM Work;
#define N 3
static WDFTIMER Timers[N];
static WDFWORKITEM Items[N];
static UCHAR Log[256];
static ULONG LogLen;

static VOID Note(UCHAR what, ULONG i)
{
	if (LogLen + 2 <= sizeof(Log)) {
		Log[LogLen++] = what;
		Log[LogLen++] = (UCHAR)('0' + i);
	}
}

static VOID Tick(WDFTIMER t)
{
	ULONG i;

	for (i = 0; i < N; i++)
		if (Timers[i] == t)
			break;
	Note('t', i);
	if (i < N && Items[i] != NULL)
		WdfWorkItemEnqueue(Items[i]);
}

static VOID Work(WDFWORKITEM w)
{
	ULONG i;

	for (i = 0; i < N; i++)
		if (Items[i] == w)
			break;
	Note('w', i);
	if (i < N && Timers[(i + 1) % N] != NULL)
		WdfTimerStart(Timers[(i + 1) % N], WDF_REL_TIMEOUT_IN_MS(1));
}

static VOID Ioctl(WDFQUEUE q, WDFREQUEST r, size_t o, size_t in, ULONG code)
{
	ULONG *arg = NULL;
	size_t len = 0;
	ULONG i;
	ULONG_PTR info = 0;
	NTSTATUS st = STATUS_SUCCESS;

	UNREFERENCED_PARAMETER(q); UNREFERENCED_PARAMETER(o); UNREFERENCED_PARAMETER(in);
	if (code == 7) {
		PVOID out = NULL;
		size_t cap = 0;

		st = WdfRequestRetrieveOutputBuffer(r, LogLen, &out, &cap);
		if (NT_SUCCESS(st)) {
			RtlCopyMemory(out, Log, LogLen);
			info = LogLen;
			LogLen = 0;
		}
		WdfRequestCompleteWithInformation(r, st, info);
		return;
	}
	st = WdfRequestRetrieveInputBuffer(r, 2 * sizeof(ULONG), (PVOID *)&arg, &len);
	if (!NT_SUCCESS(st)) {
		WdfRequestComplete(r, st);
		return;
	}
	i = arg[0] % N;
	switch (code) {
	case 1:
		if (Timers[i] != NULL)
			WdfTimerStart(Timers[i], WDF_REL_TIMEOUT_IN_MS(arg[1]));
		break;
	case 2:
		if (Timers[i] != NULL)
			WdfTimerStop(Timers[i], FALSE);
		break;
	case 3:
		if (Items[i] != NULL)
			WdfWorkItemEnqueue(Items[i]);
		break;
	case 4:
		if (Timers[i] != NULL)
			WdfObjectDelete(Timers[i]);
		Timers[i] = NULL;
		break;
	case 5:
		if (Items[i] != NULL)
			WdfObjectDelete(Items[i]);
		Items[i] = NULL;
		break;
	default:
		st = STATUS_INVALID_DEVICE_REQUEST;
	}
	WdfRequestComplete(r, st);
}

static NTSTATUS Add(WDFDRIVER d, PWDFDEVICE_INIT init)
{
	DECLARE_CONST_UNICODE_STRING(link, L"\\DosDevices\\PendingWork");
	WDF_OBJECT_ATTRIBUTES a;
	WDF_IO_QUEUE_CONFIG q;
	WDF_TIMER_CONFIG tc;
	WDF_WORKITEM_CONFIG wc;
	WDFDEVICE dev;
	NTSTATUS st;
	ULONG i;

	UNREFERENCED_PARAMETER(d);
	WDF_OBJECT_ATTRIBUTES_INIT(&a);
	a.ExecutionLevel = WdfExecutionLevelPassive;
	st = WdfDeviceCreate(&init, &a, &dev);
	if (!NT_SUCCESS(st))
		return st;
	/* The link is how the test's IOCTLs reach the device. */
	st = WdfDeviceCreateSymbolicLink(dev, &link);
	if (!NT_SUCCESS(st))
		return st;
	WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&q, WdfIoQueueDispatchSequential);
	q.EvtIoDeviceControl = Ioctl;
	st = WdfIoQueueCreate(dev, &q, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
	for (i = 0; i < N && NT_SUCCESS(st); i++) {
		WDF_TIMER_CONFIG_INIT_PERIODIC(&tc, Tick, i == N - 1 ? 5 : 0);
		WDF_OBJECT_ATTRIBUTES_INIT(&a);
		a.ParentObject = dev;
		st = WdfTimerCreate(&tc, &a, &Timers[i]);
		if (!NT_SUCCESS(st))
			break;
		WDF_WORKITEM_CONFIG_INIT(&wc, Work);
		WDF_OBJECT_ATTRIBUTES_INIT(&a);
		a.ParentObject = dev;
		st = WdfWorkItemCreate(&wc, &a, &Items[i]);
	}
	return st;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT o, PUNICODE_STRING p)
{
	WDF_DRIVER_CONFIG c;

	WDF_DRIVER_CONFIG_INIT(&c, Add);
	return WdfDriverCreate(o, p, WDF_NO_OBJECT_ATTRIBUTES, &c, WDF_NO_HANDLE);
}
`;

const root = mkdtempSync(join(tmpdir(), 'wdf-pending-work-'));
writeFileSync(join(root, 'driver.c'), SOURCE);

/** The WDF shim's kind numbers of a timer and a work item (wdf-shim.ts KIND). */
const KIND_TIMER = 3;
const KIND_WORKITEM = 4;

class TestDriver extends WindowsDriver {
  clock = 0;
  constructor() {
    const box = { self: null as TestDriver | null };
    const opts: WindowsDriverOptions = { choices: DEFAULT_CHOICES, sink: new MemorySink(), now: () => box.self?.clock ?? 0 };
    super({ name: 'wdf-pending-work', world: 'kmdf', root, sources: ['driver.c'] }, 'guest', opts, {});
    box.self = this;
    this.driverEntry();
    const add = this.wdf.addPnpDevice();
    if (add.status !== 0) throw new Error(`device add failed: 0x${add.status.toString(16)}`);
  }

  op(code: number, index: number, arg = 0): void {
    const input = new Uint8Array(new Uint32Array([index, arg]).buffer);
    const r = this.ioctl(code, input, 0);
    if (r.status !== 0) throw new Error(`IOCTL ${code} failed: 0x${r.status.toString(16)}`);
  }

  /** What the callbacks did since the last read: "t0", "w2", ... */
  log(): string[] {
    const out = new TextDecoder().decode(this.ioctl(7, new Uint8Array(8), 256).output);
    return out.match(/../g) ?? [];
  }

  /** The scan the shim's sets stand in for. */
  scan(): { timers: number[]; workItems: number[]; nextDue: number | null } {
    const timers: number[] = [];
    const workItems: number[] = [];
    let nextDue: number | null = null;
    for (const o of this.wdf.liveObjects()) {
      if (o.kind === KIND_TIMER && o.due !== null) {
        timers.push(o.handle);
        if (nextDue === null || o.due < nextDue) nextDue = o.due;
      }
      if (o.kind === KIND_WORKITEM && o.queued) workItems.push(o.handle);
    }
    return { timers: timers.sort((a, b) => a - b), workItems: workItems.sort((a, b) => a - b), nextDue };
  }
}

type Step =
  | { op: 'start'; i: number; ms: number }
  | { op: 'stop' | 'enqueue' | 'delete-timer' | 'delete-item'; i: number }
  | { op: 'advance'; ms: number }
  | { op: 'run-work' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('start' as const), i: fc.nat(2), ms: fc.nat(12) }),
  fc.record({ op: fc.constantFrom('stop' as const, 'enqueue' as const), i: fc.nat(2) }),
  fc.record({ op: fc.constantFrom('delete-timer' as const, 'delete-item' as const), i: fc.nat(2) }),
  fc.record({ op: fc.constant('advance' as const), ms: fc.nat(10) }),
  fc.constant({ op: 'run-work' as const }),
);

const CODE = { start: 1, stop: 2, enqueue: 3, 'delete-timer': 4, 'delete-item': 5 } as const;

describe.skipIf(!toolchain)('the WDF shim\'s started timers and queued work items', () => {
  it('equal a scan of the live objects after any sequence of starts, stops, enqueues, deletes and runs; nextTimerDue is the scan\'s soonest', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const d = new TestDriver();
        const check = (): void => {
          const s = d.scan();
          expect(d.wdf.pendingWork()).toEqual({ timers: s.timers, workItems: s.workItems });
          expect(d.wdf.nextTimerDue()).toBe(s.nextDue);
          expect(d.wdf.workItemQueued).toBe(s.workItems.length > 0);
        };
        check();
        for (const st of steps) {
          if (st.op === 'advance') {
            d.clock += st.ms;
            d.wdf.runTimers(d.clock);
          } else if (st.op === 'run-work') {
            d.wdf.runWorkItems();
          } else {
            d.op(CODE[st.op], st.i, st.op === 'start' ? st.ms : 0);
          }
          check();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('fires due timers soonest first, the one created first of two due at once, and a periodic one again after its period', () => {
    const d = new TestDriver();
    d.op(1, 2, 3); // the periodic timer (5 ms), first due at 3
    d.op(1, 1, 3); // due at 3 too, created before it
    d.op(1, 0, 4);
    d.clock = 4;
    expect(d.wdf.runTimers(d.clock)).toBe(3);
    expect(d.log()).toEqual(['t1', 't2', 't0']);
    // The periodic one is due again at 3 + 5; the others were one-shots.
    expect(d.wdf.nextTimerDue()).toBe(8);
    // Their callbacks queued work items 1, 2 and 0: they run in creation order.
    expect(d.wdf.runWorkItems()).toBe(3);
    expect(d.log()).toEqual(['w0', 'w1', 'w2']);
  });

  it('forgets a timer or work item the driver deletes: nothing is due from it any more', () => {
    const d = new TestDriver();
    d.op(1, 0, 2);
    d.op(3, 1);
    d.op(4, 0);
    d.op(5, 1);
    expect(d.wdf.pendingWork()).toEqual({ timers: [], workItems: [] });
    expect(d.wdf.nextTimerDue()).toBeNull();
    expect(d.wdf.workItemQueued).toBe(false);
    expect(d.wdf.runTimers(100) + d.wdf.runWorkItems()).toBe(0);
  });
});
