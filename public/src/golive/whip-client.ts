// The Go-live page's WHIP publisher (RFC 9725). It asks the Worker for the nearest media nodes
// (`GET /api/ingest/nearest`) and POSTs its offer to a node itself: the Worker's `POST /whip/{id}`
// answers with a 307, and a browser following it cross-origin drops the Authorization header.
// One encoding per track (no simulcast), H.264 first. A lost connection is published again, each
// time under a new lease epoch, unless another publisher took the stream over meanwhile; Stop
// DELETEs the session resource.
import {
  afterConnectionLost,
  preferH264,
  reconnectDelayMs,
  RECONNECT_GIVE_UP_MS,
  type PublisherStatus,
} from '../../../core/player/golive.ts';

export type PublishState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'ended' | 'taken-over' | 'refused' | 'failed';

export interface PublishSnapshot {
  state: PublishState;
  /** The lease epoch this page's current (or last) session took. */
  epoch: number | null;
  nodeId: string | null;
  region: string | null;
  /** When this broadcast first went live (ms), and when it stopped. */
  startedAt: number | null;
  endedAt: number | null;
  /** Times the page published again after losing its connection. */
  reconnects: number;
  error: { code: string; message: string } | null;
}

export interface WhipClientOptions {
  origin: string;
  streamId: string;
  /** The publish token (with the page's session appended when the token is session-bound). */
  credential: string;
  tracks: () => { video: MediaStreamTrack | null; audio: MediaStreamTrack | null };
  maxVideoBitrate: () => number;
}

/** A refusal of the credential (401/403): trying again, or on another node, cannot help. */
class Refusal extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

interface Session {
  pc: RTCPeerConnection;
  resource: string | null;
  nodeId: string;
  region: string;
  lostTimer?: ReturnType<typeof setTimeout>;
}

interface NearestNode {
  nodeId: string;
  region: string;
  ingest: { whip: string | null };
}

const CONNECT_TIMEOUT_MS = 15_000;
/**
 * Chrome says `disconnected` once about 5 s of its connectivity checks went unanswered; a blip
 * that short can still heal, one 2 s longer rarely does, and every second waited is a second of
 * the broadcast lost (and counts against the origin's END_GRACE_SECONDS).
 */
const DISCONNECTED_GRACE_MS = 2000;
const GATHER_TIMEOUT_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class WhipClient {
  readonly #opts: WhipClientOptions;
  readonly #listeners = new Set<(s: PublishSnapshot) => void>();
  #snap: PublishSnapshot = {
    state: 'idle',
    epoch: null,
    nodeId: null,
    region: null,
    startedAt: null,
    endedAt: null,
    reconnects: 0,
    error: null,
  };
  #session: Session | null = null;
  /** Bumped by every start and stop: a loop of an older generation gives up. */
  #generation = 0;

  constructor(opts: WhipClientOptions) {
    this.#opts = opts;
  }

  get snapshot(): PublishSnapshot {
    return { ...this.#snap };
  }

  get peer(): RTCPeerConnection | null {
    return this.#session?.pc ?? null;
  }

  onChange(fn: (s: PublishSnapshot) => void): void {
    this.#listeners.add(fn);
  }

  #set(patch: Partial<PublishSnapshot>): void {
    this.#snap = { ...this.#snap, ...patch };
    for (const fn of this.#listeners) fn(this.snapshot);
  }

  get #auth(): Record<string, string> {
    return { authorization: `Bearer ${this.#opts.credential}` };
  }

  /** Goes live (again after an end): a new broadcast, its elapsed time from zero. */
  start(): void {
    if (this.#snap.state === 'connecting' || this.#snap.state === 'live' || this.#snap.state === 'reconnecting') return;
    const gen = ++this.#generation;
    this.#set({ state: 'connecting', epoch: null, startedAt: null, endedAt: null, reconnects: 0, error: null });
    void this.#publishLoop(gen, 15_000);
  }

  /** Ends the broadcast: DELETE on the session resource (the node ends the stream), then the peer closes. */
  async stop(): Promise<void> {
    this.#generation++;
    const s = this.#session;
    this.#session = null;
    this.#set({ state: 'ended', endedAt: Date.now() });
    if (s) {
      await this.#deleteResource(s, false);
      s.pc.close();
    }
  }

  /** The page is going away: end the session in a request that outlives it. */
  leave(): void {
    const s = this.#session;
    if (s) void this.#deleteResource(s, true);
  }

  /** A new camera, screen or microphone while live: the same sender, no renegotiation. */
  async replaceTrack(kind: 'video' | 'audio', track: MediaStreamTrack | null): Promise<void> {
    // A transceiver's receiver track always exists and has the kind, whatever its sender holds now.
    const transceiver = this.#session?.pc.getTransceivers().find((t) => t.receiver.track.kind === kind);
    if (transceiver) await transceiver.sender.replaceTrack(track);
  }

  async #publishLoop(gen: number, giveUpMs: number): Promise<void> {
    const began = Date.now();
    for (let attempt = 1; gen === this.#generation; attempt++) {
      try {
        await this.#publishOnce(gen);
        return;
      } catch (err) {
        if (gen !== this.#generation) return;
        if (err instanceof Refusal) {
          this.#set({ state: 'refused', error: { code: err.code, message: err.message }, endedAt: Date.now() });
          return;
        }
        const error = { code: (err as { code?: string }).code ?? 'network_error', message: (err as Error).message };
        if (Date.now() - began > giveUpMs) {
          this.#set({ state: 'failed', error, endedAt: Date.now() });
          return;
        }
        this.#set({ error });
        await sleep(reconnectDelayMs(attempt));
      }
    }
  }

  /** One publish: the nearest nodes in order until one answers and the peer connects. */
  async #publishOnce(gen: number): Promise<void> {
    const nodes = await this.#nearestNodes();
    if (nodes.length === 0) throw Object.assign(new Error('no media node takes browser publishers right now'), { code: 'no_ingest_node' });
    let last: unknown = null;
    for (const node of nodes) {
      if (gen !== this.#generation) return;
      try {
        await this.#publishTo(node, gen);
        return;
      } catch (err) {
        if (err instanceof Refusal) throw err;
        last = err;
      }
    }
    throw last;
  }

  async #publishTo(node: NearestNode, gen: number): Promise<void> {
    const endpoint = `${node.ingest.whip!.replace(/\/$/, '')}/${encodeURIComponent(this.#opts.streamId)}`;
    const pc = this.#newPeer();
    let session: Session | null = null;
    try {
      const offer = await this.#offer(pc);
      const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/sdp', ...this.#auth }, body: offer });
      if (res.status !== 201) {
        const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
        if (res.status === 401 || res.status === 403) throw await this.#refusal(body?.error);
        throw Object.assign(new Error(body?.error?.message ?? `the media node answered ${res.status}`), {
          code: body?.error?.code ?? `http_${res.status}`,
        });
      }
      const answer = await res.text();
      const location = res.headers.get('location');
      session = { pc, resource: location ? new URL(location, endpoint).href : null, nodeId: node.nodeId, region: node.region };
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await connected(pc, CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (session) void this.#deleteResource(session, true);
      pc.close();
      throw err;
    }
    if (gen !== this.#generation) {
      void this.#deleteResource(session, true);
      pc.close();
      return;
    }
    this.#session = session;
    this.#watch(session, gen);
    this.#set({ state: 'live', nodeId: node.nodeId, region: node.region, startedAt: this.#snap.startedAt ?? Date.now(), error: null });
    // The epoch this session's lease took: after a lost connection a newer one means a takeover.
    const status = await this.#status().catch(() => null);
    if (gen === this.#generation && this.#session === session && status?.epoch != null) this.#set({ epoch: status.epoch });
  }

  #newPeer(): RTCPeerConnection {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    const { video, audio } = this.#opts.tracks();
    if (video) {
      // One encoding: no simulcast (the node takes one video track and makes the ladder itself).
      const t = pc.addTransceiver(video, { direction: 'sendonly', sendEncodings: [{ maxBitrate: this.#opts.maxVideoBitrate() }] });
      preferCodecs(t);
    }
    if (audio) pc.addTransceiver(audio, { direction: 'sendonly' });
    return pc;
  }

  /** The offer with every local candidate in it (the node does not take trickled ones before its answer). */
  async #offer(pc: RTCPeerConnection): Promise<string> {
    await pc.setLocalDescription();
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    return pc.localDescription!.sdp;
  }

  #watch(session: Session, gen: number): void {
    const pc = session.pc;
    pc.addEventListener('connectionstatechange', () => {
      if (this.#session !== session || gen !== this.#generation) return;
      clearTimeout(session.lostTimer);
      if (pc.connectionState === 'connected' || pc.connectionState === 'connecting') return;
      if (pc.connectionState === 'disconnected') session.lostTimer = setTimeout(() => void this.#lost(session, gen), DISCONNECTED_GRACE_MS);
      else void this.#lost(session, gen);
    });
  }

  async #lost(session: Session, gen: number): Promise<void> {
    if (this.#session !== session || gen !== this.#generation) return;
    this.#session = null;
    void this.#deleteResource(session, true);
    session.pc.close();
    this.#set({ state: 'reconnecting', reconnects: this.#snap.reconnects + 1 });
    const status = await this.#status().catch(() => null);
    if (gen !== this.#generation) return;
    if (afterConnectionLost(this.#snap.epoch, status) === 'taken-over') {
      this.#set({
        state: 'taken-over',
        endedAt: Date.now(),
        error: { code: 'taken_over', message: `another publisher took the stream over (lease epoch ${status!.epoch})` },
      });
      return;
    }
    // At once: the first attempt needs no back-off (a node that is gone is refused in milliseconds).
    await this.#publishLoop(gen, RECONNECT_GIVE_UP_MS);
  }

  async #nearestNodes(): Promise<NearestNode[]> {
    const res = await fetch(`${this.#opts.origin}/api/ingest/nearest?limit=3`);
    if (!res.ok) throw Object.assign(new Error(`the ingest node list answered ${res.status}`), { code: `http_${res.status}` });
    const { nodes } = (await res.json()) as { nodes: NearestNode[] };
    return nodes.filter((n) => n.ingest.whip);
  }

  async #status(): Promise<PublisherStatus & { code?: string; message?: string }> {
    const res = await fetch(`${this.#opts.origin}/whip/${encodeURIComponent(this.#opts.streamId)}/status`, {
      headers: this.#auth,
      cache: 'no-store',
    });
    const body = (await res.json()) as PublisherStatus & { error?: { code: string; message: string } };
    if (!res.ok) return { status: 'idle', epoch: null, code: body.error?.code, message: body.error?.message };
    return body;
  }

  /** The node says only "not accepted"; the Worker's status route says why (expired, used, …). */
  async #refusal(nodeError: { code: string; message: string } | undefined): Promise<Refusal> {
    if (nodeError?.code === 'token_wrong_stream') return new Refusal(nodeError.code, nodeError.message);
    const status = await this.#status().catch(() => null);
    if (status?.code) return new Refusal(status.code, status.message ?? status.code);
    return new Refusal(nodeError?.code ?? 'unauthorized', nodeError?.message ?? 'the publish token was not accepted');
  }

  async #deleteResource(s: Session, keepalive: boolean): Promise<void> {
    if (!s.resource) return;
    const resource = s.resource;
    s.resource = null;
    await fetch(resource, { method: 'DELETE', headers: this.#auth, keepalive }).then(
      (r) => r.body?.cancel(),
      () => undefined,
    );
  }
}

/** H.264 first in the offer (setCodecPreferences): the receiver's list per the spec, the sender's where a browser wants that. */
function preferCodecs(t: RTCRtpTransceiver): void {
  if (typeof t.setCodecPreferences !== 'function') return;
  for (const caps of [RTCRtpReceiver.getCapabilities?.('video'), RTCRtpSender.getCapabilities?.('video')]) {
    if (!caps) continue;
    try {
      t.setCodecPreferences(preferH264(caps.codecs));
      return;
    } catch {
      // This browser wants the other list.
    }
  }
}

function connected(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (pc.connectionState === 'connected') return resolve();
    const timer = setTimeout(() => done(new Error('the media connection did not come up')), timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      pc.removeEventListener('connectionstatechange', onChange);
      if (err) reject(Object.assign(err, { code: 'connect_timeout' }));
      else resolve();
    };
    const onChange = () => {
      if (pc.connectionState === 'connected') done();
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed')
        done(new Error(`the media connection ${pc.connectionState}`));
    };
    pc.addEventListener('connectionstatechange', onChange);
  });
}
