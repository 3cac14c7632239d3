// The media node's one WebRTC stack: libdatachannel through node-datachannel (ICE, DTLS, SRTP and
// RTP in native threads; chosen by measurement, docs/benchmarks.md "WebRTC stack"). Everything that
// speaks WebRTC on the node (WHIP ingest, WHEP playback, the party-voice SFU) makes its
// peer connections here, so ports, addresses and ICE servers are configured once.
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, RtcConfig } from 'node-datachannel';
import type { Logger } from '../log.ts';
import { announceAddress } from './sdp.ts';

export interface IceServerConfig {
  /** `stun:host:port` or `turn:host:port?transport=udp`. */
  urls: string;
  username?: string;
  credential?: string;
}

export interface WebRtcConfig {
  /** Local address the media sockets bind to (default: every interface). */
  bindAddress?: string;
  /** UDP ports for media, inclusive; each peer connection takes one (ICE UDP mux: all share the first). */
  portRange?: [number, number];
  /** One UDP port for every peer connection (libjuice's ICE UDP mux): the firewall opens one port. */
  udpMux?: boolean;
  /** Written into answers instead of the bound host address (a node behind 1:1 NAT). */
  announcedAddress?: string;
  /** STUN/TURN servers the node itself gathers with; also offered to clients (WHIP Link headers). */
  iceServers?: IceServerConfig[];
  /** How long an answer may wait for candidate gathering (STUN) before it goes with what it has. */
  gatheringTimeoutMs?: number;
}

export interface PeerCounters {
  /** Peer connections ever created (a refused request must never move this). */
  created: number;
  /** Open now. */
  open: number;
}

function toLibdatachannelServer(s: IceServerConfig): string {
  // libdatachannel takes `stun:host:port` and `turn:user:pass@host:port?transport=udp` strings.
  if (!s.username) return s.urls;
  const [scheme, rest] = s.urls.split(/:(.*)/s, 2) as [string, string];
  return `${scheme}:${encodeURIComponent(s.username)}:${encodeURIComponent(s.credential ?? '')}@${rest}`;
}

/** A peer connection of the stack; close() through it, so the stack's counters stay true. */
export interface Peer {
  readonly pc: PeerConnection;
  close(): void;
}

let loggerInstalled = false;

export class WebRtcStack {
  readonly config: WebRtcConfig;
  readonly counters: PeerCounters = { created: 0, open: 0 };
  readonly #log: Logger;
  readonly #peers = new Set<Peer>();
  #seq = 0;

  constructor(config: WebRtcConfig, logger: Logger) {
    this.config = config;
    this.#log = logger;
    if (!loggerInstalled) {
      loggerInstalled = true;
      // libdatachannel's own warnings go to our structured log (its threads call back on the loop).
      nodeDataChannel.initLogger('Warning', (level, message) =>
        logger[level === 'Warning' ? 'warn' : 'error']('libdatachannel', { level, message }),
      );
    }
  }

  /**
   * A new peer connection. `disableAutoNegotiation`: the caller sets the remote offer and then asks
   * for the answer, so tracks added first are matched to the offer's sections by mid.
   */
  createPeer(label: string): Peer {
    const c = this.config;
    const rtc: RtcConfig = {
      iceServers: (c.iceServers ?? []).map(toLibdatachannelServer),
      disableAutoNegotiation: true,
      ...(c.bindAddress ? { bindAddress: c.bindAddress } : {}),
      ...(c.portRange ? { portRangeBegin: c.portRange[0], portRangeEnd: c.portRange[1] } : {}),
      ...(c.udpMux ? { enableIceUdpMux: true } : {}),
    };
    const pc = new nodeDataChannel.PeerConnection(`${label}-${++this.#seq}`, rtc);
    this.counters.created++;
    this.counters.open++;
    let closed = false;
    const peer: Peer = {
      pc,
      close: () => {
        if (closed) return;
        closed = true;
        this.counters.open--;
        this.#peers.delete(peer);
        try {
          pc.close();
        } catch (err) {
          this.#log.warn('closing a peer connection failed', { error: err });
        }
      },
    };
    this.#peers.add(peer);
    return peer;
  }

  /** Applies a remote offer and resolves with the complete answer (every candidate in it: no server trickle). */
  async answer(pc: PeerConnection, offer: string): Promise<string> {
    pc.setRemoteDescription(offer, 'offer');
    pc.setLocalDescription('answer');
    await new Promise<void>((resolve) => {
      if (pc.gatheringState() === 'complete') return resolve();
      const timer = setTimeout(resolve, this.config.gatheringTimeoutMs ?? 3000);
      pc.onGatheringStateChange((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const sdp = pc.localDescription()?.sdp;
    if (!sdp) throw new Error('the WebRTC stack produced no answer');
    return this.config.announcedAddress ? announceAddress(sdp, this.config.announcedAddress) : sdp;
  }

  /** Closes every peer connection (shutdown). */
  closeAll(): void {
    for (const peer of [...this.#peers]) peer.close();
  }
}
