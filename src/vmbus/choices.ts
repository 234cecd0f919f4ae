// Behaviours the public KMCL documentation leaves open, in one table.
//
// SPEC-NOTES marks these [gap] (not documented) or [I] (our inference). For each, the
// emulator implements every listed option and defaults to the one we think a Windows
// host shows. A real host's trace tells which one it actually showed: the emulated
// nightly runs different option sets as stand-ins for different host builds, and the
// checker names the option when a real trace only fits another.
//
// The README's table of choices is generated from GAP_CHOICES (`bench choices`).

export interface GapChoices {
  /** SPEC-NOTES 13.6: are packets queued in the library written before any later send? */
  sendOrdering: 'fifo' | 'ring-first';
  /** SPEC-NOTES 13.11: after VmbChannelPacketFail, is a completion sent to the peer? */
  packetFailCompletion: 'none' | 'status-unsuccessful';
  /**
   * SPEC-NOTES 6.3 / 13.9: which sizing-call result KMCL takes as "call me again with a
   * buffer": any failure that reports BytesNeeded > 0 (the default: the
   * EvtVmbChannelSavePacket page says KMCL calls again when the first call "returns a
   * failure code"), or only STATUS_BUFFER_TOO_SMALL.
   */
  savePacketSizing: 'any-failure-with-size' | 'buffer-too-small';
  /**
   * REVIEW E4: completions a VSP makes inside EvtVmbChannelSuspend (retiring the packets it
   * holds): written to the ring as any completion (default), or held in the library queue,
   * which a save then carries.
   */
  suspendCompletions: 'write-to-ring' | 'queue-and-save';
  /** SPEC-NOTES 13.7: may SaveBegin be called while the channel is active (not paused)? */
  saveWhileActive: 'refuse' | 'allow';
  /** SPEC-NOTES 13.7: chunk framing of SaveContinue output: one chunk per packet, or packed. */
  saveChunking: 'per-packet' | 'packed';
  /** SPEC-NOTES 13.8: callbacks on a restored server channel: Opened again, or straight to Started. */
  restoreCallbacks: 'opened-started' | 'started-only';
  /** SPEC-NOTES 13.12: do deferred packets count against the transaction quota? */
  quotaCountsDeferred: boolean;
  /** SPEC-NOTES 13.16: full -> not-full signal threshold: free > P (Linux, openvmm) or free >= P. */
  pendingSendThreshold: 'greater' | 'greater-or-equal';
  /** SPEC-NOTES 13.5: status passed to completion routines of packets cancelled at teardown. */
  cancelStatus: 'cancelled' | 'device-removed';
  /**
   * REVIEW section 2: what a VSP sees when a checkpoint of a running VM is taken.
   * `save-and-continue` (the default): Pause, SaveBegin / SaveContinue / SaveEnd, then
   * Start again on the same channel objects (no RestoreFromBuffer, no new host objects).
   * `pulse`: the save is restored at once onto new host objects (openvmm's
   * PulseSaveRestore). Applying a checkpoint restores onto new objects under either.
   */
  runningCheckpoint: 'save-and-continue' | 'pulse';
}

export const DEFAULT_CHOICES: Readonly<GapChoices> = {
  sendOrdering: 'fifo',
  packetFailCompletion: 'none',
  savePacketSizing: 'any-failure-with-size',
  suspendCompletions: 'write-to-ring',
  saveWhileActive: 'refuse',
  saveChunking: 'per-packet',
  restoreCallbacks: 'opened-started',
  quotaCountsDeferred: true,
  pendingSendThreshold: 'greater',
  cancelStatus: 'cancelled',
  runningCheckpoint: 'save-and-continue',
};

/** Each choice with its options and where the question comes from, for docs and errors. */
export const GAP_CHOICES: ReadonlyArray<{
  key: keyof GapChoices;
  /** the default first */
  options: readonly (string | boolean)[];
  source: string;
  question: string;
  /** why the default is the default: the source it follows, or [I] and the inference */
  defaultSource: string;
}> = [
  { key: 'sendOrdering', options: ['fifo', 'ring-first'], source: 'SPEC-NOTES 13.6', question: 'Are library-queued packets written before later sends?', defaultSource: '[I] a FIFO library queue: [H] documents no reordering of sends' },
  { key: 'packetFailCompletion', options: ['none', 'status-unsuccessful'], source: 'SPEC-NOTES 13.11', question: 'Does VmbChannelPacketFail send a completion?', defaultSource: '[I] [D] VmbChannelPacketFail documents no completion to the peer' },
  { key: 'savePacketSizing', options: ['any-failure-with-size', 'buffer-too-small'], source: 'SPEC-NOTES 13.9', question: 'Which SavePacket sizing result means "call again with a buffer"?', defaultSource: '[D] EvtVmbChannelSavePacket: KMCL calls again when the first call returns a failure code, any failure (REVIEW E5)' },
  { key: 'saveWhileActive', options: ['refuse', 'allow'], source: 'SPEC-NOTES 13.7', question: 'Is SaveBegin legal on an active channel?', defaultSource: '[H] save is described after Pause; refusing catches a VSP that does not pause [I]' },
  { key: 'saveChunking', options: ['per-packet', 'packed'], source: 'SPEC-NOTES 13.7', question: 'How is SaveContinue output framed into chunks?', defaultSource: '[I] one chunk per packet, the finest framing RestoreFromBuffer must accept' },
  { key: 'restoreCallbacks', options: ['opened-started', 'started-only'], source: 'SPEC-NOTES 13.8', question: 'Does a restored channel get EvtVmbChannelOpened again?', defaultSource: '[I] a restored channel is opened by the guest again, as a new connection' },
  { key: 'quotaCountsDeferred', options: [true, false], source: 'SPEC-NOTES 13.12', question: 'Do deferred packets count against the transaction quota?', defaultSource: '[I] a deferred packet is still handed out (not completed)' },
  { key: 'pendingSendThreshold', options: ['greater', 'greater-or-equal'], source: 'SPEC-NOTES 13.16', question: 'Is the full->not-full signal sent at free > P or free >= P?', defaultSource: '[L] Linux hv_ringbuffer and [O] openvmm signal at free > P' },
  { key: 'cancelStatus', options: ['cancelled', 'device-removed'], source: 'SPEC-NOTES 13.5', question: 'Which status do cancelled packets complete with?', defaultSource: '[I] STATUS_CANCELLED is what Disable\'s cancellation reports in WDF generally' },
  {
    key: 'suspendCompletions',
    options: ['write-to-ring', 'queue-and-save'],
    source: 'SPEC-NOTES 2.4',
    question: 'Do completions made inside EvtVmbChannelSuspend go to the ring, or wait in the library (and get saved)?',
    defaultSource: '[H] Suspend stops incoming delivery and new sends; no source says KMCL holds completions back or saves them (REVIEW E4), so they go out as any completion [I]',
  },
  {
    key: 'runningCheckpoint',
    options: ['save-and-continue', 'pulse'],
    source: 'SPEC-NOTES 6.5',
    question: 'When a checkpoint of a running VM is taken, does the VSP start again on the same channel objects, or is the save restored at once onto new ones?',
    defaultSource: '[I] no public source gives the sequence a VSP sees (REVIEW section 2); a standard checkpoint keeps the VM running, so Pause / Save / Start on the same objects (no RestoreFromBuffer) is the likelier one. pulse is what openvmm\'s PulseSaveRestore stress operation does [O]',
  },
];

/** Merges a partial set (from a scenario or lab file) over the defaults; unknown keys are the caller's to reject. */
export function resolveChoices(partial: Partial<GapChoices> | undefined): GapChoices {
  return { ...DEFAULT_CHOICES, ...(partial ?? {}) };
}
