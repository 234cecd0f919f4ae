// The KMCL rules the emulator enforces on a driver, each with its source, and the record of
// a break (a KmclViolation). A driver that breaks one is told the way Driver Verifier
// tells it: the call stops with KmclUsageError (a real system would bugcheck), and the
// channel's onMisuse hook is told first, so the driver's trace names the rule, the call,
// the channel and the packet (trace event kmcl.violation; divergence class kmcl-misuse).
//
// Rules marked with a REVIEW id answer that finding of the December 2026 review of the
// emulator (REVIEW E1-E10, summarised in the README's KMCL section).

export const KMCL_RULES = {
  'start-pause-in-callback': {
    review: 'E2',
    rule: 'VmbChannelStart and VmbChannelPause are never called from inside a state-change callback',
    source: '[H] VmbChannelStart / VmbChannelPause remarks (SPEC-NOTES 2.4)',
  },
  'send-after-suspend': {
    review: 'E3',
    rule: 'after EvtVmbChannelSuspend the driver stops calling VmbPacketSend until the channel is started again',
    source: '[H] EvtVmbChannelSuspend remarks (SPEC-NOTES 2.4)',
  },
  'free-twice': {
    review: 'E7',
    rule: 'a packet is freed once (VmbPacketFree of a freed packet)',
    source: '[H] packet object lifetime (SPEC-NOTES 4.1); Driver Verifier pool checks',
  },
  'packet-leak': {
    review: 'E7',
    rule: 'every packet a driver allocated is freed before VmbChannelCleanup',
    source: '[H] VmbPacketFree / VmbChannelCleanup (SPEC-NOTES 4.1, 2.5); Driver Verifier pool leak checks',
  },
  'free-in-flight': {
    review: null,
    rule: 'a queued or sent packet is not freed before its completion routine ran',
    source: '[H] packet object lifecycle (SPEC-NOTES 4.1)',
  },
  'send-busy-packet': {
    review: null,
    rule: 'a packet is sent again only after its completion routine ran, and never after it was freed',
    source: '[H] packet object lifecycle (SPEC-NOTES 4.1)',
  },
  'wrong-state': {
    review: null,
    rule: 'lifecycle calls follow the channel state machine (Enable on a disabled channel, Start after Enable, Cleanup once disabled)',
    source: '[H] state model (SPEC-NOTES 2.1-2.5)',
  },
  'retire-twice': {
    review: null,
    rule: 'an incoming packet is completed or failed exactly once, on its own channel',
    source: '[D] EvtVmbChannelProcessPacket (SPEC-NOTES 3)',
  },
  'defer-outside-process-packet': {
    review: null,
    rule: 'VmbChannelPacketDeferToPassive is called only inside EvtVmbChannelProcessPacket for that packet',
    source: '[H] VmbChannelPacketDeferToPassive (SPEC-NOTES 3)',
  },
  'bad-quota': {
    review: null,
    rule: 'the transaction quota is greater than zero',
    source: '[D] VmbChannelSetTransactionQuota (SPEC-NOTES 3)',
  },
} as const;

export type KmclRule = keyof typeof KMCL_RULES;

/** One break of a rule, as the trace's kmcl.violation event carries it. */
export interface KmclViolation {
  rule: KmclRule;
  /** the KMCL function the driver called (its C name) */
  call: string;
  /** the channel's id */
  ch: number;
  /** the packet's id (VMBPACKET), or 0 when the call is about no packet */
  packet: number;
  message: string;
}
