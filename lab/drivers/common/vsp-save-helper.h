/* SPDX-License-Identifier: MIT */
/*
 * A KMCL server channel saved into memory and restored from it, the way every VSP does
 * it whatever its protocol: SaveBegin, the SaveContinue loop with its partial-progress
 * codes and its bound on calls that make no progress, SaveEnd; and the RestoreFromBuffer
 * loop over what was saved. A VSP keeps what is its own: its EvtVmbChannelSavePacket /
 * RestorePacket callbacks (its SaveBuf record), pausing the channel before a save and
 * starting it again when the save fails, and freeing the packets its restore callback
 * allocated when a restore fails. Used by the sample VSP (lab/drivers/vsp) and blockq's
 * (devices/blockq/c); a device author's VSP may use it the same way.
 *
 * The blob is a list of segments, one per SaveContinue call that wrote bytes: a ULONG
 * length, then the bytes. Each segment goes back to RestoreFromBuffer whole, as KMCL
 * handed it out.
 *
 * Two of the "continue" codes are not NT_SUCCESS: STATUS_BUFFER_OVERFLOW (SaveContinue
 * made progress, call again) and STATUS_MORE_PROCESSING_REQUIRED (RestoreFromBuffer
 * wants the next segment). They are tested first, every time, before NT_SUCCESS could
 * mistake them for failures.
 *
 * Kernel mode only: include after <vmbuskernelmodeclientlibapi.h>.
 */
#ifndef VSP_SAVE_HELPER_H
#define VSP_SAVE_HELPER_H

/*
 * SaveBegin, SaveContinue until everything is saved, SaveEnd (after every SaveBegin that
 * succeeded, a failed SaveContinue included), into a blob allocated from the non-paged
 * pool with Tag. On success *Blob and *BlobSize are the caller's (it frees *Blob with
 * ExFreePoolWithTag(*Blob, Tag)); on failure nothing is left allocated and *Blob is NULL.
 * A SaveContinue that says "more to come" with nothing written and asks for no larger
 * buffer fails the save (STATUS_UNSUCCESSFUL) rather than spin for ever (REVIEW D8).
 * The caller pauses the channel first, and starts it again when this fails.
 */
_Must_inspect_result_
NTSTATUS VshSaveChannel(PKMCL_SERVER_INTERFACE_V1 Kmcl, VMBCHANNEL Channel, ULONG Tag,
			PUCHAR *Blob, ULONG *BlobSize);

/*
 * Feeds each segment of a blob VshSaveChannel wrote to RestoreFromBuffer, in order, for
 * as long as KMCL asks for the next one. STATUS_SUCCESS, or the failure: a blob that
 * ends before KMCL is done or holds a segment longer than itself is
 * STATUS_INVALID_PARAMETER, else KMCL's status. After a failure KMCL has taken back what
 * it restored; the packets the VSP's restore callback allocated are the VSP's to free
 * before it cleans up the channel (REVIEW D3).
 */
_Must_inspect_result_
NTSTATUS VshRestoreChannel(PKMCL_SERVER_INTERFACE_V1 Kmcl, VMBCHANNEL Channel, PUCHAR Blob,
			   ULONG BlobSize);

#endif /* VSP_SAVE_HELPER_H */
