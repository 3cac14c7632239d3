// Party voice in the browser: the microphone (asked for when the member joins, not before), one
// RTCPeerConnection per other seat of the mesh (who offers: core/rooms/voice-mesh-plan.ts), the
// room as the signalling channel (offers, answers, batched trickle ICE), mute, push-to-talk, a
// camera that can join the same connections without renegotiating, and audio levels — the
// speaking indicator, and what the tests measure. A group past the mesh goes through the media
// node's SFU instead (voice-sfu.ts), with the same controls. Loaded only when a member joins voice.
import type { RoomClient, VoiceMember, VoiceSignalBody, VoiceState } from '../rooms-client.ts';
import { planMesh } from '../../../core/rooms/voice-mesh-plan.ts';
import { SPEAKING_REPORT_MS, SpeakingDetector, dbfs, rms } from '../../../core/rooms/voice-activity.ts';
import { VOICE_LIMITS } from '../../../core/rooms/voice-wire.ts';
import type { VoiceCandidate } from '../../../core/rooms/voice-protocol.ts';
import { SfuLink } from './voice-sfu.ts';

/** Candidates gathered within this window go out as one message (the room counts messages). */
const CANDIDATE_BATCH_MS = 100;
/** How often levels are read (speaking indicator, reports). */
const LEVEL_MS = 50;
/** An offer unanswered for this long is sent again (a lost relay, a peer that reloaded). */
const OFFER_RETRY_MS = 8000;
/** A failed or refused SFU connection is tried again after this long (with a new token). */
const SFU_RETRY_MS = 3000;

export type VoiceStatus = 'idle' | 'joining' | 'connected' | 'sfu' | 'error';

interface Peer {
  conn: string;
  pc: RTCPeerConnection;
  offerer: boolean;
  audioEl: HTMLAudioElement;
  analyser: AnalyserNode | null;
  samples: Float32Array<ArrayBuffer>;
  level: number;
  video: MediaStream | null;
  /** Remote candidates that arrived before the remote description. */
  early: RTCIceCandidateInit[];
  outgoing: VoiceCandidate[];
  flushTimer: ReturnType<typeof setTimeout> | null;
  offeredAt: number;
}

export interface VoiceMeshOptions {
  room: RoomClient;
  /** A room token, for the ICE servers request (anonymous members are known by their cookie). */
  roomToken?: string | null;
}

export class VoiceMesh {
  status: VoiceStatus = 'idle';
  error: string | null = null;
  /** The member's own choice; a moderator's mute (`forced`) and push-to-talk gate it further. */
  selfMuted = false;
  pushToTalk = false;
  private talking = false;
  private readonly room: RoomClient;
  private readonly opts: VoiceMeshOptions;
  private readonly peers = new Map<string, Peer>();
  /** The connection to the SFU while the group is past the mesh (status `sfu`). */
  private sfu: SfuLink | null = null;
  private sfuRetry: ReturnType<typeof setTimeout> | null = null;
  private mic: MediaStream | null = null;
  private cam: MediaStream | null = null;
  private ctx: AudioContext | null = null;
  private micAnalyser: AnalyserNode | null = null;
  private micSamples = new Float32Array(1024);
  private iceServers: RTCIceServer[] = [];
  private readonly detector = new SpeakingDetector();
  private lastReportAt = 0;
  private reported = false;
  private levelTimer: ReturnType<typeof setInterval> | null = null;
  private readonly offs: Array<() => void> = [];
  private readonly listeners = new Set<() => void>();
  /** Own level (RMS) after the gate, and whether this member counts as speaking. */
  localLevel = 0;

  constructor(opts: VoiceMeshOptions) {
    this.opts = opts;
    this.room = opts.room;
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  get seat(): VoiceMember | undefined {
    const me = this.room.you?.conn;
    return this.room.state?.voice.members.find((m) => m.conn === me);
  }

  get camera(): boolean {
    return this.cam !== null;
  }

  get speaking(): boolean {
    return this.detector.speaking;
  }

  /** Joins: asks for the microphone now (this runs from the member's click), then takes a seat. */
  async join(): Promise<void> {
    if (this.status === 'joining' || this.status === 'connected') return;
    this.status = 'joining';
    this.changed();
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
      this.ctx = new AudioContext();
      await this.ctx.resume().catch(() => undefined);
      this.micAnalyser = this.ctx.createAnalyser();
      this.micAnalyser.fftSize = 1024;
      this.ctx.createMediaStreamSource(this.mic).connect(this.micAnalyser);
      // The ICE servers are for members: a click that comes before the room's welcome waits for it.
      await this.roomOpen();
      this.iceServers = await this.fetchIceServers();
      this.listen();
      await this.room.joinVoice({ muted: this.selfMuted });
      this.status = 'connected';
      this.applyGate();
      this.levelTimer = setInterval(() => this.readLevels(), LEVEL_MS);
      this.sync();
    } catch (err) {
      this.status = 'error';
      this.error = err instanceof Error ? err.message : String(err);
      this.stopMedia();
    }
    this.changed();
  }

  async leave(): Promise<void> {
    for (const off of this.offs.splice(0)) off();
    for (const conn of [...this.peers.keys()]) this.closePeer(conn);
    this.closeSfu();
    if (this.levelTimer) clearInterval(this.levelTimer);
    this.levelTimer = null;
    this.stopMedia();
    this.status = 'idle';
    this.changed();
    await this.room.leaveVoice().catch(() => undefined);
  }

  async setMuted(muted: boolean): Promise<void> {
    this.selfMuted = muted;
    this.applyGate();
    this.changed();
    await this.room.updateVoice({ muted }).catch((err: unknown) => {
      // Refused (a moderator's mute holds): stay muted.
      this.selfMuted = true;
      this.applyGate();
      this.changed();
      console.warn('voice: unmute refused', err);
    });
  }

  setPushToTalk(on: boolean): void {
    this.pushToTalk = on;
    this.talking = false;
    this.applyGate();
    this.changed();
  }

  /** Push-to-talk: the key or button is held (true) or let go (false). */
  talk(down: boolean): void {
    if (this.talking === down) return;
    this.talking = down;
    this.applyGate();
    this.changed();
  }

  /** Turns the camera on or off; its track rides the video transceiver every peer already has. */
  async setCamera(on: boolean): Promise<void> {
    if (on === this.camera) return;
    if (on) this.cam = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240, frameRate: 15 }, audio: false });
    else {
      for (const t of this.cam?.getTracks() ?? []) t.stop();
      this.cam = null;
    }
    const track = this.cam?.getVideoTracks()[0] ?? null;
    for (const p of this.peers.values()) await this.videoTransceiver(p.pc)?.sender.replaceTrack(track);
    this.changed();
    await this.room.updateVoice({ camera: on }).catch(() => undefined);
  }

  /** The local camera, for the member's own tile. */
  localVideo(): MediaStream | null {
    return this.cam;
  }

  /** The received audio of one seat (what its audio element plays), for measurements. */
  remoteAudio(conn: string): MediaStream | null {
    return (this.peers.get(conn)?.audioEl.srcObject as MediaStream | null | undefined) ?? this.sfu?.remoteAudio(conn) ?? null;
  }

  remoteVideo(conn: string): MediaStream | null {
    return this.peers.get(conn)?.video ?? null;
  }

  /** Received audio level (RMS, 0..1) per seat, and the connection state: what the tests read. */
  levels(): Record<string, { rms: number; state: RTCPeerConnectionState; gated: boolean }> {
    const out: Record<string, { rms: number; state: RTCPeerConnectionState; gated: boolean }> = { ...this.sfu?.levels() };
    for (const p of this.peers.values()) out[p.conn] = { rms: p.level, state: p.pc.connectionState, gated: p.audioEl.muted };
    return out;
  }

  /**
   * What each received audio track has carried so far, from the connection's own statistics
   * (inbound-rtp `totalAudioEnergy`, `totalSamplesDuration`): two readings a while apart give the
   * track's mean power over that window, which no momentary dip of an analyser frame can fake.
   */
  async receivedEnergy(): Promise<Record<string, { energy: number; seconds: number }>> {
    const out: Record<string, { energy: number; seconds: number }> = { ...(await this.sfu?.receivedEnergy()) };
    for (const p of this.peers.values()) {
      const stats = await p.pc.getStats().catch(() => null);
      stats?.forEach((r: { type?: string; kind?: string; totalAudioEnergy?: number; totalSamplesDuration?: number }) => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio')
          out[p.conn] = { energy: r.totalAudioEnergy ?? 0, seconds: r.totalSamplesDuration ?? 0 };
      });
    }
    return out;
  }

  // --- the mesh -----------------------------------------------------------------------------------

  private listen(): void {
    this.offs.push(
      this.room.on('voice', () => this.sync()),
      this.room.on('voice.signal', (s) => void this.onSignal(s.from, s.signal)),
      this.room.on('voice.sfu', (s) => void this.connectSfu(s.endpoint, s.token)),
      // A reconnected room connection is a new connection id: take a seat again under it.
      this.room.on('open', () => {
        if ((this.status !== 'connected' && this.status !== 'sfu') || this.seat) return;
        // The SFU seat was the old connection's: a new one comes with a token for the new seat.
        this.closeSfu();
        this.status = 'connected';
        void this.room.joinVoice({ muted: this.selfMuted }).catch(() => undefined);
      }),
    );
  }

  /** Brings the peer connections in line with the seats (and the gate with the member's seat). */
  private sync(): void {
    const voice: VoiceState | undefined = this.room.state?.voice;
    if (!voice || this.status === 'idle' || this.status === 'error') return;
    const me = this.room.you?.conn ?? null;
    if (voice.mode === 'sfu' && this.status !== 'sfu') {
      this.status = 'sfu';
      this.room.requestSfu();
    } else if (voice.mode === 'mesh' && this.status === 'sfu') {
      this.closeSfu();
      this.status = 'connected';
    }
    const plan = planMesh(me, voice, this.peers.keys());
    for (const conn of plan.close) this.closePeer(conn);
    for (const conn of plan.offer) void this.offerTo(conn);
    const now = Date.now();
    for (const p of this.peers.values()) {
      if (p.offerer && p.pc.signalingState === 'have-local-offer' && now - p.offeredAt > OFFER_RETRY_MS) {
        this.closePeer(p.conn);
        void this.offerTo(p.conn);
      }
    }
    // Muted by a moderator: this member's own choice becomes muted too, so when the moderator
    // lifts it the member stays muted until they unmute (the seat says the same).
    if (this.seat?.forced) this.selfMuted = true;
    // A moderator's mute of someone: this member stops hearing them, whatever their client does.
    for (const m of voice.members) {
      const p = this.peers.get(m.conn);
      if (p) p.audioEl.muted = m.forced;
    }
    this.sfu?.gate(new Set(voice.members.filter((m) => m.forced).map((m) => m.conn)));
    this.applyGate();
    this.changed();
  }

  // --- the SFU ------------------------------------------------------------------------------------

  /** The room granted a token (`voice.sfu`): one connection to the node replaces any earlier one. */
  private async connectSfu(endpoint: string, token: string): Promise<void> {
    if (this.status !== 'sfu') return;
    this.sfu?.close();
    const others = Math.max(0, (this.room.state?.voice.members.length ?? 1) - 1);
    const link: SfuLink = new SfuLink({
      endpoint,
      token,
      room: this.room.roomId,
      others,
      mic: this.micTrack(),
      iceServers: this.iceServers,
      ctx: this.ctx,
      onChange: () => this.changed(),
      onNeedsReconnect: (why) => this.retrySfu(link, why === 'overflow' ? 0 : SFU_RETRY_MS),
    });
    this.sfu = link;
    this.sync();
    try {
      await link.connect();
    } catch (err) {
      console.warn('voice: the SFU connection failed', err);
      this.retrySfu(link, SFU_RETRY_MS);
    }
    this.changed();
  }

  /** Asks the room for a new token (the one given is for connecting once, and short-lived). */
  private retrySfu(link: SfuLink, afterMs: number): void {
    if (this.sfu !== link || this.sfuRetry) return;
    this.sfuRetry = setTimeout(() => {
      this.sfuRetry = null;
      if (this.status === 'sfu' && this.sfu === link) this.room.requestSfu();
    }, afterMs);
  }

  private closeSfu(): void {
    if (this.sfuRetry) clearTimeout(this.sfuRetry);
    this.sfuRetry = null;
    this.sfu?.close();
    this.sfu = null;
  }

  private newPeer(conn: string, offerer: boolean): Peer {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    const audioEl = document.createElement('audio');
    audioEl.autoplay = true;
    const p: Peer = {
      conn,
      pc,
      offerer,
      audioEl,
      analyser: null,
      samples: new Float32Array(1024),
      level: 0,
      video: null,
      early: [],
      outgoing: [],
      flushTimer: null,
      offeredAt: 0,
    };
    pc.onicecandidate = (ev) => {
      if (!ev.candidate?.candidate) return;
      p.outgoing.push({ candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid, sdpMLineIndex: ev.candidate.sdpMLineIndex });
      p.flushTimer ??= setTimeout(() => this.flushCandidates(p), CANDIDATE_BATCH_MS);
    };
    pc.ontrack = (ev) => {
      if (ev.track.kind === 'audio') {
        const stream = new MediaStream([ev.track]);
        // Chrome feeds a remote track to Web Audio only while a media element plays it too.
        audioEl.srcObject = stream;
        void audioEl.play().catch(() => undefined);
        if (this.ctx) {
          p.analyser = this.ctx.createAnalyser();
          p.analyser.fftSize = 1024;
          this.ctx.createMediaStreamSource(stream).connect(p.analyser);
        }
      } else {
        p.video = new MediaStream([ev.track]);
        this.changed();
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' && p.offerer) void this.offerTo(conn, true);
      this.changed();
    };
    this.peers.set(conn, p);
    return p;
  }

  private async offerTo(conn: string, iceRestart = false): Promise<void> {
    let p = this.peers.get(conn);
    if (!p) {
      p = this.newPeer(conn, true);
      p.pc.addTransceiver(this.micTrack() ?? 'audio', { direction: 'sendrecv' });
      p.pc.addTransceiver(this.cam?.getVideoTracks()[0] ?? 'video', { direction: 'sendrecv' });
    }
    const offer = await p.pc.createOffer(iceRestart ? { iceRestart: true } : {});
    await p.pc.setLocalDescription(offer);
    p.offeredAt = Date.now();
    this.send(conn, { type: 'offer', sdp: p.pc.localDescription!.sdp });
  }

  private async onSignal(from: string, signal: VoiceSignalBody): Promise<void> {
    if (this.status !== 'connected') return;
    let p = this.peers.get(from);
    try {
      if (signal.type === 'offer') {
        // The other side offers (its connection id sorts first), or offers again after a restart.
        if (!p) p = this.newPeer(from, false);
        await p.pc.setRemoteDescription({ type: 'offer', sdp: signal.sdp });
        for (const t of p.pc.getTransceivers()) {
          const kind = t.receiver.track.kind;
          t.direction = 'sendrecv';
          await t.sender.replaceTrack(kind === 'audio' ? this.micTrack() : (this.cam?.getVideoTracks()[0] ?? null));
        }
        await this.drainEarly(p);
        const answer = await p.pc.createAnswer();
        await p.pc.setLocalDescription(answer);
        this.send(from, { type: 'answer', sdp: p.pc.localDescription!.sdp });
      } else if (signal.type === 'answer') {
        if (p?.pc.signalingState !== 'have-local-offer') return;
        await p.pc.setRemoteDescription({ type: 'answer', sdp: signal.sdp });
        await this.drainEarly(p);
      } else if (p) {
        for (const c of signal.candidates) {
          if (p.pc.remoteDescription) await p.pc.addIceCandidate(c).catch(() => undefined);
          else p.early.push(c);
        }
      }
    } catch (err) {
      console.warn('voice: signalling failed with', from, err);
    }
  }

  private async drainEarly(p: Peer): Promise<void> {
    for (const c of p.early.splice(0)) await p.pc.addIceCandidate(c).catch(() => undefined);
  }

  private flushCandidates(p: Peer): void {
    p.flushTimer = null;
    while (p.outgoing.length > 0)
      this.send(p.conn, { type: 'candidates', candidates: p.outgoing.splice(0, VOICE_LIMITS.candidatesPerMessage) });
  }

  private send(to: string, signal: VoiceSignalBody): void {
    this.room.signal(to, signal);
  }

  private closePeer(conn: string): void {
    const p = this.peers.get(conn);
    if (!p) return;
    if (p.flushTimer) clearTimeout(p.flushTimer);
    p.pc.close();
    p.audioEl.srcObject = null;
    this.peers.delete(conn);
  }

  private videoTransceiver(pc: RTCPeerConnection): RTCRtpTransceiver | undefined {
    return pc.getTransceivers().find((t) => t.receiver.track.kind === 'video');
  }

  // --- the microphone -----------------------------------------------------------------------------

  private micTrack(): MediaStreamTrack | null {
    return this.mic?.getAudioTracks()[0] ?? null;
  }

  /** Whether the microphone may send now: not muted (by choice or by a moderator), and the key held in push-to-talk. */
  get live(): boolean {
    return this.status !== 'idle' && !this.selfMuted && !this.seat?.forced && (!this.pushToTalk || this.talking);
  }

  /** A disabled track sends silence on every connection at once, with no renegotiation. */
  private applyGate(): void {
    const t = this.micTrack();
    if (t) t.enabled = this.live;
  }

  private readLevels(): void {
    const now = Date.now();
    if (this.micAnalyser) {
      this.micAnalyser.getFloatTimeDomainData(this.micSamples);
      this.localLevel = this.live ? rms(this.micSamples) : 0;
    }
    this.detector.update(dbfs(this.localLevel), now);
    // Report the current state, spaced: a flip that comes back within the spacing is never sent.
    if (this.detector.speaking !== this.reported && now - this.lastReportAt >= SPEAKING_REPORT_MS && this.seat) {
      this.reported = this.detector.speaking;
      this.lastReportAt = now;
      this.room.reportSpeaking(this.reported);
    }
    for (const p of this.peers.values()) {
      if (!p.analyser) continue;
      p.analyser.getFloatTimeDomainData(p.samples);
      p.level = rms(p.samples);
    }
    this.sfu?.readLevels();
    this.changed();
  }

  private roomOpen(timeoutMs = 15_000): Promise<void> {
    if (this.room.you) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new Error('the room is not connected'))), timeoutMs);
      const off = this.room.on('open', () => (clearTimeout(timer), off(), resolve()));
    });
  }

  private async fetchIceServers(): Promise<RTCIceServer[]> {
    const url = new URL(`/rooms/${encodeURIComponent(this.room.roomId)}/ice-servers`, location.origin);
    if (!this.opts.roomToken && this.room.sessionToken) url.searchParams.set('session', this.room.sessionToken);
    const res = await fetch(url, {
      credentials: 'same-origin',
      headers: this.opts.roomToken ? { authorization: `Bearer ${this.opts.roomToken}` } : {},
    });
    if (!res.ok) throw new Error(`ICE servers: HTTP ${res.status}`);
    return ((await res.json()) as { iceServers: RTCIceServer[] }).iceServers;
  }

  private stopMedia(): void {
    for (const t of [...(this.mic?.getTracks() ?? []), ...(this.cam?.getTracks() ?? [])]) t.stop();
    this.mic = null;
    this.cam = null;
    void this.ctx?.close().catch(() => undefined);
    this.ctx = null;
    this.micAnalyser = null;
  }
}
