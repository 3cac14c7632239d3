// Party voice through the media node's SFU, in the browser: one RTCPeerConnection that sends the
// microphone once and receives the others on a fixed set of receive slots (sized when it connects:
// the others in voice now and a few more), and a data channel on which the node says which member
// is on which slot. A group that outgrows the slots connects again with more. The SFU contract is
// core/contracts/voice-sfu.ts; VoiceMesh decides when this is used.
import {
  VOICE_SFU_CHANNEL,
  parseVoiceSfuRoster,
  voiceSfuRoomUrl,
  voiceSfuSlots,
  type VoiceSfuRoster,
} from '../../../core/contracts/voice-sfu.ts';
import { VOICE_LIMITS } from '../../../core/rooms/voice-wire.ts';
import { rms } from '../../../core/rooms/voice-activity.ts';

/** How long the offer waits for ICE gathering before it goes with the candidates it has. */
const GATHER_MS = 2000;

interface Slot {
  mid: string;
  track: MediaStreamTrack;
  audioEl: HTMLAudioElement;
  analyser: AnalyserNode | null;
  samples: Float32Array<ArrayBuffer>;
  level: number;
}

export interface SfuLinkOptions {
  /** `voice.sfu {endpoint, token}` from the room. */
  endpoint: string;
  token: string;
  room: string;
  /** Other members in voice now: the slots are sized from it. */
  others: number;
  mic: MediaStreamTrack | null;
  iceServers: RTCIceServer[];
  ctx: AudioContext | null;
  onChange(): void;
  /** More members than slots (reconnect with more), or the connection failed. */
  onNeedsReconnect(why: 'overflow' | 'failed'): void;
}

export class SfuLink {
  readonly pc: RTCPeerConnection;
  readonly slotCount: number;
  roster: VoiceSfuRoster | null = null;
  private readonly opts: SfuLinkOptions;
  private readonly slots = new Map<string, Slot>();
  private sessionUrl: string | null = null;
  private closed = false;
  private forced = new Set<string>();

  constructor(opts: SfuLinkOptions) {
    this.opts = opts;
    this.slotCount = voiceSfuSlots(opts.others, VOICE_LIMITS.maxMembers);
    this.pc = new RTCPeerConnection({ iceServers: opts.iceServers, bundlePolicy: 'max-bundle' });
  }

  /** Offers (microphone, receive slots, roster channel), POSTs to the node, applies its answer. */
  async connect(): Promise<void> {
    const pc = this.pc;
    pc.addTransceiver(this.opts.mic ?? 'audio', { direction: 'sendonly' });
    for (let i = 0; i < this.slotCount; i++) pc.addTransceiver('audio', { direction: 'recvonly' });
    const channel = pc.createDataChannel(VOICE_SFU_CHANNEL);
    channel.onmessage = (ev) => {
      const roster = typeof ev.data === 'string' ? parseVoiceSfuRoster(ev.data) : null;
      if (!roster || this.closed) return;
      this.roster = roster;
      this.applyGate();
      this.opts.onChange();
      if (roster.overflow > 0) this.opts.onNeedsReconnect('overflow');
    };
    pc.ontrack = (ev) => {
      const mid = ev.transceiver.mid;
      if (mid === null || ev.track.kind !== 'audio') return;
      const audioEl = document.createElement('audio');
      audioEl.autoplay = true;
      const stream = new MediaStream([ev.track]);
      // Chrome feeds a remote track to Web Audio only while a media element plays it too.
      audioEl.srcObject = stream;
      void audioEl.play().catch(() => undefined);
      let analyser: AnalyserNode | null = null;
      if (this.opts.ctx) {
        analyser = this.opts.ctx.createAnalyser();
        analyser.fftSize = 1024;
        this.opts.ctx.createMediaStreamSource(stream).connect(analyser);
      }
      this.slots.set(mid, { mid, track: ev.track, audioEl, analyser, samples: new Float32Array(1024), level: 0 });
      this.applyGate();
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' && !this.closed) this.opts.onNeedsReconnect('failed');
      this.opts.onChange();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, GATHER_MS);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState !== 'complete') return;
        clearTimeout(timer);
        resolve();
      });
    });
    const url = voiceSfuRoomUrl(this.opts.endpoint, this.opts.room);
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/sdp' },
      body: pc.localDescription!.sdp,
    });
    if (res.status !== 201) {
      const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
      throw new Error(`the voice server refused: ${res.status} ${body?.error?.code ?? ''} ${body?.error?.message ?? ''}`.trim());
    }
    const location = res.headers.get('location');
    this.sessionUrl = location ? new URL(location, url).toString() : null;
    const answer = await res.text();
    if (this.closed) return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  }

  /** The seat (`conn`) a slot carries now. */
  private connOf(mid: string): string | null {
    return this.roster?.slots[mid] ?? null;
  }

  /** Seats muted by a moderator, as the room says: their audio is not played (whatever arrives). */
  gate(forced: Set<string>): void {
    this.forced = forced;
    this.applyGate();
  }

  private applyGate(): void {
    const forced = new Set([...this.forced, ...(this.roster?.forced ?? [])]);
    for (const s of this.slots.values()) {
      const conn = this.connOf(s.mid);
      s.audioEl.muted = conn === null || forced.has(conn);
    }
  }

  /** Sends this track as the microphone (a reconnected or changed microphone), no renegotiation. */
  async replaceMic(track: MediaStreamTrack | null): Promise<void> {
    await this.pc.getTransceivers()[0]?.sender.replaceTrack(track);
  }

  readLevels(): void {
    for (const s of this.slots.values()) {
      if (!s.analyser) continue;
      s.analyser.getFloatTimeDomainData(s.samples);
      s.level = rms(s.samples);
    }
  }

  /** Per seat heard through the SFU: level, the connection's state, whether it is gated. */
  levels(): Record<string, { rms: number; state: RTCPeerConnectionState; gated: boolean }> {
    const out: Record<string, { rms: number; state: RTCPeerConnectionState; gated: boolean }> = {};
    for (const s of this.slots.values()) {
      const conn = this.connOf(s.mid);
      if (conn) out[conn] = { rms: s.level, state: this.pc.connectionState, gated: s.audioEl.muted };
    }
    return out;
  }

  remoteAudio(conn: string): MediaStream | null {
    for (const s of this.slots.values())
      if (this.connOf(s.mid) === conn) return (s.audioEl.srcObject as MediaStream | null | undefined) ?? null;
    return null;
  }

  /** What each seat's slot has carried (inbound-rtp energy), as VoiceMesh.receivedEnergy. */
  async receivedEnergy(): Promise<Record<string, { energy: number; seconds: number }>> {
    const out: Record<string, { energy: number; seconds: number }> = {};
    const stats = await this.pc.getStats().catch(() => null);
    const byTrack = new Map([...this.slots.values()].map((s) => [s.track.id, s.mid]));
    stats?.forEach(
      (r: { type?: string; kind?: string; trackIdentifier?: string; totalAudioEnergy?: number; totalSamplesDuration?: number }) => {
        if (r.type !== 'inbound-rtp' || r.kind !== 'audio' || !r.trackIdentifier) return;
        const mid = byTrack.get(r.trackIdentifier);
        const conn = mid === undefined ? null : this.connOf(mid);
        if (conn) out[conn] = { energy: r.totalAudioEnergy ?? 0, seconds: r.totalSamplesDuration ?? 0 };
      },
    );
    return out;
  }

  /** Leaves: the peer connection closes and the node is told (it would notice within seconds anyway). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots.values()) s.audioEl.srcObject = null;
    this.slots.clear();
    this.pc.close();
    if (this.sessionUrl) void fetch(this.sessionUrl, { method: 'DELETE', keepalive: true }).catch(() => undefined);
  }
}
