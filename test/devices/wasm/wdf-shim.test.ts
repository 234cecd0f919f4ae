// The WDF shim's devices (src/devices/wasm/wdf-shim.ts) enforce what KMDF and the object
// manager do, on a small KMDF driver of the test's own (built to wasm32 like any driver):
// one symbolic link name per device, a control device reached through its link once it
// finished initializing, a PnP device deleted only by the framework, a control device
// deleted before the driver unloads (KMDF's ControlDeviceDeleted rule), a wait lock taken
// once and at PASSIVE_LEVEL, and cleanup callbacks run as objects go. (Its first version
// forgot the control device's PASSIVE execution level: the shim stopped it at its wait lock.)

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WindowsDriver, type WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { violationOf } from './support/violation.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const SOURCE = String.raw`
#include <ntddk.h>
#include <wdf.h>
#include <wdmsec.h>

DRIVER_INITIALIZE DriverEntry;
static EVT_WDF_DRIVER_DEVICE_ADD Add;
static EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL Ioctl;
static EVT_WDF_OBJECT_CONTEXT_CLEANUP Cleanup;
static WDFWAITLOCK Lock;
static WDFDEVICE Control;
static LONG Devices;

/* Answers every IOCTL with the number of PnP devices. */
static VOID Ioctl(WDFQUEUE q, WDFREQUEST r, size_t o, size_t i, ULONG code)
{
	UNREFERENCED_PARAMETER(q); UNREFERENCED_PARAMETER(o); UNREFERENCED_PARAMETER(i); UNREFERENCED_PARAMETER(code);
	WdfWaitLockAcquire(Lock, NULL);
	WdfRequestCompleteWithInformation(r, STATUS_SUCCESS, (ULONG_PTR)Devices);
	WdfWaitLockRelease(Lock);
}

static NTSTATUS CreateControl(WDFDRIVER d)
{
	DECLARE_CONST_UNICODE_STRING(name, L"\\Device\\ShimTest");
	DECLARE_CONST_UNICODE_STRING(link, L"\\DosDevices\\ShimTest");
	PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(d, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
	WDF_OBJECT_ATTRIBUTES a;
	WDF_IO_QUEUE_CONFIG q;
	NTSTATUS st;

	if (init == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	WDF_OBJECT_ATTRIBUTES_INIT(&a);
#ifndef DISPATCH_QUEUE
	a.ExecutionLevel = WdfExecutionLevelPassive; /* its requests take a wait lock */
#endif
	st = WdfDeviceInitAssignName(init, &name);
	if (NT_SUCCESS(st))
		st = WdfDeviceCreate(&init, &a, &Control);
	if (!NT_SUCCESS(st)) {
		WdfDeviceInitFree(init);
		return st;
	}
	st = WdfDeviceCreateSymbolicLink(Control, &link);
	WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&q, WdfIoQueueDispatchSequential);
	q.EvtIoDeviceControl = Ioctl;
	if (NT_SUCCESS(st))
		st = WdfIoQueueCreate(Control, &q, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
#ifndef UNFINISHED
	WdfControlFinishInitializing(Control);
#endif
	return st;
}

static VOID Cleanup(WDFOBJECT o)
{
	UNREFERENCED_PARAMETER(o);
	WdfWaitLockAcquire(Lock, NULL);
#ifdef WAITLOCK_TWICE
	WdfWaitLockAcquire(Lock, NULL);
#endif
	if (--Devices == 0 && Control != NULL) {
#ifndef KEEP_CONTROL
		WdfObjectDelete(Control);
#endif
		Control = NULL;
	}
	WdfWaitLockRelease(Lock);
}

static NTSTATUS Add(WDFDRIVER d, PWDFDEVICE_INIT init)
{
	DECLARE_CONST_UNICODE_STRING(link, L"\\DosDevices\\ShimTest");
	WDF_OBJECT_ATTRIBUTES a;
	WDFDEVICE dev;
	NTSTATUS st;

	WDF_OBJECT_ATTRIBUTES_INIT(&a);
	a.EvtCleanupCallback = Cleanup;
	st = WdfDeviceCreate(&init, &a, &dev);
	if (!NT_SUCCESS(st))
		return st;
	WdfWaitLockAcquire(Lock, NULL);
	Devices++;
	WdfWaitLockRelease(Lock);
#ifdef LINK_EACH
	/* One name for every device, as a driver with one device per channel must not. */
	return WdfDeviceCreateSymbolicLink(dev, &link);
#else
	UNREFERENCED_PARAMETER(link);
#endif
#ifdef DELETE_PNP
	WdfObjectDelete(dev);
#endif
	return Control == NULL ? CreateControl(d) : STATUS_SUCCESS;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT o, PUNICODE_STRING p)
{
	WDF_DRIVER_CONFIG c;
	WDFDRIVER d;
	NTSTATUS st;

	WDF_DRIVER_CONFIG_INIT(&c, Add);
	st = WdfDriverCreate(o, p, WDF_NO_OBJECT_ATTRIBUTES, &c, &d);
	return NT_SUCCESS(st) ? WdfWaitLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &Lock) : st;
}
`;

const root = mkdtempSync(join(tmpdir(), 'wdf-shim-test-'));
writeFileSync(join(root, 'driver.c'), SOURCE);

class TestDriver extends WindowsDriver {
  constructor(defines: string[] = []) {
    const opts: WindowsDriverOptions = { choices: DEFAULT_CHOICES, sink: new MemorySink(), now: () => 0, defines };
    super({ name: 'wdf-shim-test', world: 'kmdf', root, sources: ['driver.c'] }, 'guest', opts, {});
    this.driverEntry();
  }
}

const STATUS_OBJECT_NAME_NOT_FOUND = 0xc0000034;
const STATUS_OBJECT_NAME_COLLISION = 0xc0000035;

describe.skipIf(!toolchain)('the WDF shim\'s devices', () => {
  it('several PnP devices behind one control device, reached through its symbolic link; the last device\'s cleanup deletes it, and the driver unloads clean', () => {
    const d = new TestDriver();
    expect(d.ioctl(1, new Uint8Array(0), 0).status).toBe(STATUS_OBJECT_NAME_NOT_FOUND);
    const a = d.wdf.addPnpDevice();
    const b = d.wdf.addPnpDevice();
    expect([a.status, b.status]).toEqual([0, 0]);
    expect(d.wdf.pnpDevices()).toEqual([a.device, b.device]);
    expect(d.ioctl(1, new Uint8Array(0), 0)).toMatchObject({ status: 0, info: 2 });
    d.wdf.removeDevice(a.device);
    expect(d.ioctl(1, new Uint8Array(0), 0)).toMatchObject({ status: 0, info: 1 });
    d.wdf.removeDevice(b.device);
    // Gone with the last device: nothing to open.
    expect(d.ioctl(1, new Uint8Array(0), 0).status).toBe(STATUS_OBJECT_NAME_NOT_FOUND);
    d.unload();
  });

  it('a control device that has not finished initializing cannot be opened', () => {
    const d = new TestDriver(['UNFINISHED']);
    expect(d.wdf.addPnpDevice().status).toBe(0);
    expect(d.ioctl(1, new Uint8Array(0), 0).status).toBe(STATUS_OBJECT_NAME_NOT_FOUND);
  });

  it('a second device cannot take a symbolic link name another has: its start fails with STATUS_OBJECT_NAME_COLLISION, as the object manager answers', () => {
    const d = new TestDriver(['LINK_EACH']);
    expect(d.wdf.addPnpDevice().status).toBe(0);
    expect(d.wdf.addPnpDevice()).toEqual({ status: STATUS_OBJECT_NAME_COLLISION, device: 0 });
    expect(d.wdf.pnpDevices()).toHaveLength(1);
  });

  it('a driver that deletes its PnP device itself is stopped: the framework deletes it when PnP removes it', () => {
    const v = violationOf(() => new TestDriver(['DELETE_PNP']).wdf.addPnpDevice());
    expect(v.report).toMatchObject({ rule: 'wdf.misuse', call: 'WdfObjectDelete' });
    expect(v.report.site).toContain('Add');
  });

  it('a control device still there when the driver unloads is a violation (KMDF\'s ControlDeviceDeleted rule)', () => {
    const d = new TestDriver(['KEEP_CONTROL']);
    d.wdf.addPnpDevice();
    const v = violationOf(() => d.unload());
    expect(v.report).toMatchObject({ rule: 'wdf.misuse', call: 'EvtDriverUnload' });
    expect(v.report.detail).toMatch(/ControlDeviceDeleted/);
  });

  it('a wait lock taken in a queue\'s callback that runs at DISPATCH_LEVEL (no PASSIVE execution level) is stopped there', () => {
    const d = new TestDriver(['DISPATCH_QUEUE']);
    d.wdf.addPnpDevice();
    const v = violationOf(() => d.ioctl(1, new Uint8Array(0), 0));
    expect(v.report).toMatchObject({ rule: 'irql.passive-only', call: 'WdfWaitLockAcquire' });
    expect(v.report.site).toContain('Ioctl');
  });

  it('a wait lock acquired twice is stopped there, in the cleanup callback that did it', () => {
    const d = new TestDriver(['WAITLOCK_TWICE']);
    const a = d.wdf.addPnpDevice();
    const v = violationOf(() => d.wdf.removeDevice(a.device));
    expect(v.report).toMatchObject({ rule: 'wdf.misuse', call: 'WdfWaitLockAcquire' });
    expect(v.report.site).toContain('Cleanup');
  });
});
