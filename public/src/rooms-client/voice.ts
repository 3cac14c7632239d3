// A member's calls for party voice: taking and leaving a seat, mute and camera, speaking flips,
// signals to one seat, moderators' voice sanctions and the SFU's ticket. The WebRTC side that
// uses them is public/src/voice/, loaded only when a member joins voice.
import type { VoiceSignalBody } from '../../../core/rooms/voice-protocol.ts';
import { RoomCalls } from './calls.ts';

export abstract class RoomVoiceCalls extends RoomCalls {
  get roomId(): string {
    return this.opts.room;
  }

  /** The signed session of an anonymous viewer (also kept by the browser as a cookie). */
  get sessionToken(): string | undefined {
    return this.session;
  }

  async joinVoice(opts: { muted?: boolean; camera?: boolean } = {}): Promise<void> {
    await this.request({ type: 'voice.join', muted: opts.muted ?? false, camera: opts.camera ?? false });
  }

  async leaveVoice(): Promise<void> {
    await this.request({ type: 'voice.leave' });
  }

  /** Mute and camera changes are acknowledged; speaking flips are sent without an answer. */
  async updateVoice(patch: { muted?: boolean; camera?: boolean }): Promise<void> {
    await this.request({ type: 'voice.update', ...patch });
  }

  reportSpeaking(speaking: boolean): boolean {
    return this.sendRaw({ type: 'voice.update', speaking });
  }

  /** Sends a signal to one voice seat (its connection id); refusals arrive as `error` events. */
  signal(to: string, signal: VoiceSignalBody): boolean {
    // `type` first: the room lets a long frame through only when it starts with it.
    return this.sendRaw({ type: 'voice.signal', to, signal });
  }

  async voiceMute(uid: string): Promise<void> {
    await this.request({ type: 'voice.mute', uid });
  }

  async voiceUnmute(uid: string): Promise<void> {
    await this.request({ type: 'voice.unmute', uid });
  }

  async voiceRemove(uid: string): Promise<void> {
    await this.request({ type: 'voice.remove', uid });
  }

  /** While voice is in `sfu` mode: the answer comes as a `voice.sfu` event. */
  requestSfu(): boolean {
    return this.sendRaw({ type: 'voice.sfu' });
  }
}
