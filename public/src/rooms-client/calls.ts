// What a member does in a room, as calls: chat, reactions, polls, moderation and the watch
// party's playback (host), each sent as one message (acknowledged ones resolve with the room's
// answer or reject with a RoomError); and the room's clock, which a party follows.
import type { Reaction } from '../../../core/rooms/room-protocol.ts';
import { playbackCorrection, playbackPositionAt, type ClockEstimate } from '../../../core/rooms/room-clock.ts';
import { RoomDispatch } from './dispatch.ts';

export abstract class RoomCalls extends RoomDispatch {
  /** Sends a chat message; `pdt` is the program-date-time (ms) of the frame being watched. */
  async chat(text: string, opts: { pdt?: number } = {}): Promise<number> {
    return (await this.request({ type: 'chat', text, ...(opts.pdt !== undefined ? { pdt: Math.round(opts.pdt) } : {}) }))!;
  }

  /** Fire-and-forget: reactions are counted, never acknowledged one by one. */
  /** `pdt`: the moment of the stream it reacts to (a host's reaction is then shown at that moment). */
  react(reaction: Reaction, pdt?: number): boolean {
    return this.sendRaw({ type: 'react', reaction, ...(pdt !== undefined ? { pdt } : {}) });
  }

  /** `pdt`: the moment of the stream the poll belongs to (viewers see it when their video reaches it). */
  async openPoll(question: string, options: string[], durationSec?: number, pdt?: number): Promise<number> {
    return (await this.request({
      type: 'poll.open',
      question,
      options,
      ...(durationSec ? { durationSec } : {}),
      ...(pdt !== undefined ? { pdt } : {}),
    }))!;
  }

  async vote(pollId: number, option: number): Promise<void> {
    await this.request({ type: 'poll.vote', pollId, option });
  }

  async closePoll(pollId: number): Promise<void> {
    await this.request({ type: 'poll.close', pollId });
  }

  async deleteMessage(messageId: number): Promise<void> {
    await this.request({ type: 'mod.delete', messageId });
  }

  async mute(uid: string, seconds: number): Promise<void> {
    await this.request({ type: 'mod.mute', uid, seconds });
  }

  async unmute(uid: string): Promise<void> {
    await this.request({ type: 'mod.unmute', uid });
  }

  async ban(uid: string): Promise<void> {
    await this.request({ type: 'mod.ban', uid });
  }

  async unban(uid: string): Promise<void> {
    await this.request({ type: 'mod.unban', uid });
  }

  async setSlowMode(seconds: number): Promise<void> {
    await this.request({ type: 'mod.slow', seconds });
  }

  /** Host only: where the watch party is. `at` defaults to this client's `roomNow()`. */
  async setPlayback(p: { playing: boolean; position: number; rate?: number; at?: number }): Promise<number> {
    return (await this.request({
      type: 'playback.set',
      playing: p.playing,
      position: p.position,
      rate: p.rate ?? 1,
      at: Math.round(p.at ?? this.roomNow()),
    }))!;
  }

  // --- clock -----------------------------------------------------------------------------------

  /** The room's clock (ms): the local clock plus the estimated offset. */
  roomNow(): number {
    return this.nowFn() + this.clockOffset();
  }

  /** Estimated offset (room − local, ms); before the first pong, the welcome's rough value. */
  clockOffset(): number {
    return this.clockEst.estimate()?.offset ?? this.fallbackOffset;
  }

  clockEstimate(): ClockEstimate | null {
    return this.clockEst.estimate();
  }

  /** Where the watch party's media should be now (s), or null if no playback state is set. */
  playbackPosition(atRoomMs = this.roomNow()): number | null {
    const p = this.state?.playback;
    return p ? playbackPositionAt(p, atRoomMs) : null;
  }

  /**
   * For a follower's player: given where the local media is (s), whether to do nothing, nudge
   * the playback rate (small drift) or seek (≥ 0.5 s). Null when there is no playback state.
   */
  followPlayback(localPosition: number): ReturnType<typeof playbackCorrection> | null {
    const p = this.state?.playback;
    return p ? playbackCorrection(p, this.roomNow(), localPosition) : null;
  }
}
