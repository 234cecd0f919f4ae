// Fault modes: platform bugs the emulator can imitate, one switch each, to prove that
// the checker catches them. Each records whether it actually fired in a run (a fault
// aimed at queued packets cannot fire when nothing is queued at the save).
//
// | fault                        | where it acts                                   | what a checker must see |
// |------------------------------|-------------------------------------------------|-------------------------|
// | drop-saved-packet            | SaveContinue drops one saved packet's chunk       | not-restored            |
// | restore-twice                | RestoreFromBuffer restores one packet twice       | duplicated              |
// | corrupt-savebuf              | SaveContinue flips a byte of one SaveBuf          | savebuf-mismatch; not-restored under a VSP that checks its record and refuses the damaged one (the sample's C VSP: its restore fails, the channel is rescinded and re-offered) |
// | forget-queued-at-save        | SaveContinue skips packets queued in the library  | not-saved               |
// | wrong-status                 | the host's completion carries a changed status (it acts only on one written to the ring of an open channel and then read: one left unread in a rescinded or closed ring, rolled away by applying a checkpoint taken before it was written, or never written, changed nothing) | status |
// | reorder-completions          | a completion reaches the wrong waiting packet     | lost (the right packet's completion never shows; the receiver's complete of the wrong one is not there yet), spurious, or payload when the peer had completed that packet too |
// | lose-ring-tail-at-migration  | migration loses the last packet of a ring         | lost                    |
// | unknown-packet-type          | the host writes a packet of type 0xA (cancel) ahead of one it sends | ring-format |
// | stale-rings-at-reoffer       | a channel offered anew after a rescind gets the old instance's rings, unread packets and all (it acts only when they hold a packet other than a completion: a stale completion is dropped unseen) | duplicated (an old transaction received, or completed, again after it ended) |

import type { TxId } from './tx-id.ts';

export const FAULT_MODES = [
  'drop-saved-packet',
  'restore-twice',
  'corrupt-savebuf',
  'forget-queued-at-save',
  'wrong-status',
  'reorder-completions',
  'lose-ring-tail-at-migration',
  'unknown-packet-type',
  'stale-rings-at-reoffer',
] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** The divergence classes each fault may be reported as (one of them must be). */
export const FAULT_CLASS: Readonly<Record<FaultMode, readonly string[]>> = {
  'drop-saved-packet': ['not-restored'],
  'restore-twice': ['duplicated'],
  // A VSP that restores the damaged record shows it (savebuf-mismatch); one that checks it
  // refuses it, and its restore, which the scenario did not ask to fail, fails (not-restored).
  'corrupt-savebuf': ['savebuf-mismatch', 'not-restored'],
  'forget-queued-at-save': ['not-saved'],
  'wrong-status': ['status'],
  'reorder-completions': ['lost', 'spurious', 'payload'],
  'lose-ring-tail-at-migration': ['lost'],
  'unknown-packet-type': ['ring-format'],
  'stale-rings-at-reoffer': ['duplicated'],
};

/**
 * Where the completion wrong-status changed is. The fault acted only if the guest reads
 * it: until then it lies unread in a ring (`ring`: that ring, by its byte offset in guest
 * memory, which names the channel's slot whatever host object wrote it, and the
 * transaction it completes), from where the guest reads it (`read`: for good, the trace
 * shows it) or it is thrown away unread (`gone`: a rescind or close drops the ring, or an
 * older checkpoint's memory replaces it). A checkpoint taken while it lay unread holds it,
 * and applying that checkpoint puts it back (`gone` or `ring` to `ring`); one taken before
 * it was written rolls it away (`ring` to `gone`).
 * Invariant: Faults.fired holds wrong-status exactly when this is `ring` or `read`.
 */
export type ChangedCompletion =
  | { at: 'ring'; ringAt: number; transId: TxId }
  | { at: 'read' }
  | { at: 'gone'; ringAt: number; transId: TxId };

export class Faults {
  private readonly enabled: ReadonlySet<FaultMode>;
  /** the faults that acted: changed something the run's trace can show */
  readonly fired = new Set<FaultMode>();
  /** the faults that used their one action, whether or not it showed (a superset of fired) */
  private readonly spent = new Set<FaultMode>();
  /**
   * wrong-status: where the completion it changed is (ChangedCompletion). Null before it
   * acts. Kept by the executor, which alone sees the rings: changeWritten, changeRead,
   * changeGone, changeBack.
   */
  changedCompletion: ChangedCompletion | null = null;
  constructor(modes: Iterable<FaultMode> = []) {
    this.enabled = new Set(modes);
  }
  /** Whether the fault is on and has not been used yet: each acts once per run. */
  armed(m: FaultMode): boolean {
    return this.enabled.has(m) && !this.spent.has(m);
  }
  fire(m: FaultMode): void {
    this.fired.add(m);
    this.spent.add(m);
  }
  /**
   * What fault `m` changed was thrown away before anyone saw it: it did not act after all
   * (a checker cannot be asked to flag it). It stays used: each acts once per run.
   * Invariant: fired holds only faults whose change can still show in the trace.
   */
  unseen(m: FaultMode): void {
    this.fired.delete(m);
  }
  /** wrong-status wrote its changed completion to the ring at `ringAt` (ChangedCompletion): it acted, if the guest reads it. */
  changeWritten(ringAt: number, transId: TxId): void {
    this.fire('wrong-status');
    this.changedCompletion = { at: 'ring', ringAt, transId };
  }
  /** The guest read the changed completion: the trace shows it, whatever happens after. */
  changeRead(): void {
    if (this.changedCompletion?.at === 'ring') this.changedCompletion = { at: 'read' };
  }
  /** The changed completion was thrown away unread (a rescind, a close, an older checkpoint applied): it did not act. */
  changeGone(): void {
    const c = this.changedCompletion;
    if (c?.at !== 'ring') return;
    this.changedCompletion = { at: 'gone', ringAt: c.ringAt, transId: c.transId };
    this.unseen('wrong-status');
  }
  /** A checkpoint taken while the changed completion lay unread is applied: it is unread in the ring again, and acts if read. */
  changeBack(): void {
    const c = this.changedCompletion;
    if (c?.at !== 'gone') return;
    this.changedCompletion = { at: 'ring', ringAt: c.ringAt, transId: c.transId };
    this.fired.add('wrong-status');
  }
  /** The faults used so far (fired, and those whose change went unseen): what a run handed on must not arm again. */
  get used(): FaultMode[] {
    return [...this.spent];
  }
  /**
   * A run handed on (a migration to another thread): `fired` acted, `used` (absent: the
   * same) may not act again, and wrong-status's change is where `changed` says (absent:
   * unknown, so what happens to it later cannot take back that it acted).
   */
  carryOver(fired: readonly FaultMode[], used: readonly FaultMode[] = fired, changed: ChangedCompletion | null = null): void {
    for (const m of used) this.spent.add(m);
    for (const m of fired) this.fire(m);
    this.changedCompletion = changed;
  }
  get any(): boolean {
    return this.enabled.size > 0;
  }
}

export const NO_FAULTS = new Faults();
