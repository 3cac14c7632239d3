// SDP as the media node reads and shapes it (pure: text in, text or data out). An offer is cut
// down to what the node takes (one codec per kind, no feedback it does not answer) before the
// WebRTC stack answers it, so the answer can only choose what the ladder or the SFU can use;
// trickle-ICE fragments (RFC 8840) are parsed for PATCH. No Worker or Node globals.

export type MediaKind = 'audio' | 'video';

export interface SdpCodec {
  payloadType: number;
  /** As in the rtpmap, e.g. `H264`, `opus`, `rtx`. */
  name: string;
  clockRate: number;
  channels?: number;
  /** The fmtp parameters, as written (`packetization-mode=1;profile-level-id=42e01f`). */
  fmtp: string;
}

export interface SdpMediaSection {
  kind: string;
  port: number;
  proto: string;
  /** Payload types in the m-line's order (the offerer's preference). */
  formats: string[];
  mid: string | null;
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  codecs: SdpCodec[];
  /** Every line of the section after the m-line, as written. */
  lines: string[];
}

export interface ParsedSdp {
  /** Session-level lines, v= first. */
  session: string[];
  media: SdpMediaSection[];
}

export class SdpError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

export function parseSdp(sdp: string): ParsedSdp {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== 'v=0') throw new SdpError('bad_sdp', 'an SDP starts with v=0');
  const session: string[] = [];
  const media: SdpMediaSection[] = [];
  let current: SdpMediaSection | null = null;
  for (const line of lines) {
    if (!/^[a-z]=/.test(line)) throw new SdpError('bad_sdp', `not an SDP line: ${line.slice(0, 40)}`);
    if (line.startsWith('m=')) {
      const [kind, port, proto, ...formats] = line.slice(2).split(' ');
      if (!kind || !port || !proto || !/^\d+$/.test(port)) throw new SdpError('bad_sdp', `bad m-line: ${line.slice(0, 60)}`);
      current = { kind, port: Number(port), proto, formats, mid: null, direction: 'sendrecv', codecs: [], lines: [] };
      media.push(current);
      continue;
    }
    if (!current) {
      session.push(line);
      continue;
    }
    current.lines.push(line);
    const attr = /^a=([^:]+)(?::(.*))?$/.exec(line);
    if (!attr) continue;
    const [, name, value = ''] = attr;
    if (name === 'mid') current.mid = value.trim();
    else if (DIRECTIONS.has(name!)) current.direction = name as SdpMediaSection['direction'];
    else if (name === 'rtpmap') {
      const m = /^(\d+) ([^/]+)\/(\d+)(?:\/(\d+))?/.exec(value);
      if (m)
        current.codecs.push({
          payloadType: Number(m[1]),
          name: m[2]!,
          clockRate: Number(m[3]),
          ...(m[4] ? { channels: Number(m[4]) } : {}),
          fmtp: '',
        });
    }
  }
  // fmtp lines may come before or after their rtpmap: attach them once all are read.
  for (const section of media) {
    for (const line of section.lines) {
      const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
      const codec = m && section.codecs.find((c) => c.payloadType === Number(m[1]));
      if (codec) codec.fmtp = m[2]!.trim();
    }
  }
  return { session, media };
}

export function serializeSdp(sdp: ParsedSdp): string {
  const out = [...sdp.session];
  for (const m of sdp.media) out.push(`m=${m.kind} ${m.port} ${m.proto} ${m.formats.join(' ')}`, ...m.lines);
  return out.join('\r\n') + '\r\n';
}

/** An fmtp parameter's value (`packetization-mode` → `1`), or null. */
export function fmtpParam(fmtp: string, key: string): string | null {
  for (const part of fmtp.split(';')) {
    const [k, v] = part.split('=');
    if (k?.trim().toLowerCase() === key) return (v ?? '').trim();
  }
  return null;
}

/** Which codec of a section the node takes, or null: the offerer's first acceptable one. */
export type CodecChooser = (codecs: SdpCodec[], section: SdpMediaSection) => SdpCodec | null;

/** H.264 that ffmpeg and browsers both take: packetization mode 1 (FU-A), any profile. */
export const chooseH264: CodecChooser = (codecs) =>
  codecs.find((c) => c.name.toUpperCase() === 'H264' && fmtpParam(c.fmtp, 'packetization-mode') === '1') ?? null;

/**
 * H.264 a WHEP viewer decodes from the node's real-time encode (constrained baseline, mode 1):
 * the offer's constrained-baseline entry (`42e0..`), else baseline (`4200..`), else any mode-1
 * H.264 (main and high decoders take constrained baseline too).
 */
export const chooseH264ForViewer: CodecChooser = (codecs) => {
  const mode1 = codecs.filter((c) => c.name.toUpperCase() === 'H264' && fmtpParam(c.fmtp, 'packetization-mode') === '1');
  const profile = (c: SdpCodec) => (fmtpParam(c.fmtp, 'profile-level-id') ?? '').toLowerCase();
  return mode1.find((c) => profile(c).startsWith('42e0')) ?? mode1.find((c) => profile(c).startsWith('4200')) ?? mode1[0] ?? null;
};

export const chooseOpus: CodecChooser = (codecs) => codecs.find((c) => c.name.toLowerCase() === 'opus' && c.clockRate === 48000) ?? null;

/**
 * Cuts a media section down to one codec: no RTX, RED or FEC (the node requests no
 * retransmissions), no transport-wide congestion feedback (the node answers with REMB), only the
 * primary SSRC, no simulcast attributes. In place.
 */
export function keepOneCodec(section: SdpMediaSection, codec: SdpCodec): void {
  const pt = String(codec.payloadType);
  // With RTX the section names two SSRCs (ssrc-group:FID primary rtx): only the primary flow stays.
  const primarySsrc = section.lines.map((l) => /^a=ssrc-group:FID (\d+)/.exec(l)?.[1]).find(Boolean);
  section.formats = [pt];
  section.lines = section.lines.filter((line) => {
    const perPayload = /^a=(rtpmap|fmtp|rtcp-fb):(\d+|\*)[ ]?(.*)$/.exec(line);
    if (perPayload) {
      if (perPayload[2] !== pt && perPayload[2] !== '*') return false;
      return !(perPayload[1] === 'rtcp-fb' && /^transport-cc/.test(perPayload[3]!));
    }
    if (/^a=extmap:\d+(\/\w+)? \S*transport-wide-cc/.test(line)) return false;
    if (primarySsrc && line.startsWith('a=ssrc:') && !line.startsWith(`a=ssrc:${primarySsrc} `)) return false;
    // Simulcast and its RIDs are refused by "one track" (WHIP, WHEP); their attributes must go too.
    return !/^a=(simulcast|rid|ssrc-group:FID|ssrc-group:FEC)/.test(line);
  });
}

export interface AcceptedTrack {
  kind: MediaKind;
  mid: string;
  codec: SdpCodec;
}

export interface ShapedOffer {
  /** The offer as the stack must see it: one codec per media section, no transport-wide feedback. */
  sdp: string;
  tracks: AcceptedTrack[];
}

export interface ShapeOptions {
  /** The direction the offerer must use (WHIP: it sends, so `sendonly` or `sendrecv`). */
  offererSends: boolean;
  /** WHEP: the offerer receives, so `recvonly` or `sendrecv`. */
  offererReceives?: boolean;
  video: CodecChooser;
  audio: CodecChooser;
}

/**
 * Cuts an offer down to one audio and one video section with one codec each (the offerer's first
 * acceptable one), without RTX, RED or FEC (the node requests no retransmissions) and without
 * transport-wide congestion feedback (the node answers with REMB, which libdatachannel sends).
 * Throws SdpError for an offer the node cannot take (no section, a codec it does not decode,
 * several sections of one kind, no BUNDLE-able mid).
 */
export function shapeOffer(offer: string, opts: ShapeOptions): ShapedOffer {
  const sdp = parseSdp(offer);
  const tracks: AcceptedTrack[] = [];
  for (const section of sdp.media) {
    if (section.kind !== 'audio' && section.kind !== 'video')
      throw new SdpError('unsupported_media', `the node takes audio and video, not ${section.kind}`);
    if (section.port === 0) continue;
    const kind = section.kind as MediaKind;
    if (!section.mid) throw new SdpError('bad_sdp', 'every media section needs a mid (BUNDLE)');
    if (tracks.some((t) => t.kind === kind)) throw new SdpError('unsupported_media', `one ${kind} track at most (no simulcast)`);
    if (opts.offererSends && (section.direction === 'recvonly' || section.direction === 'inactive')) {
      throw new SdpError('bad_direction', `the ${kind} section must send (it is ${section.direction})`);
    }
    if (opts.offererReceives && (section.direction === 'sendonly' || section.direction === 'inactive')) {
      throw new SdpError('bad_direction', `the ${kind} section must receive (it is ${section.direction})`);
    }
    const codec = (kind === 'video' ? opts.video : opts.audio)(section.codecs, section);
    if (!codec) {
      const offered = [...new Set(section.codecs.map((c) => c.name))].join(', ') || 'none';
      throw new SdpError(
        'unsupported_codec',
        kind === 'video' ? `video must be H.264 (packetization-mode=1); offered: ${offered}` : `audio must be Opus; offered: ${offered}`,
      );
    }
    keepOneCodec(section, codec);
    tracks.push({ kind, mid: section.mid, codec });
  }
  if (tracks.length === 0) throw new SdpError('unsupported_media', 'the offer has no audio or video to receive');
  // What the stack needs to answer at all: checked here, before the key check takes the lease.
  if (!/^a=fingerprint:\S+ [0-9A-Fa-f:]+/m.test(offer)) throw new SdpError('bad_sdp', 'the offer has no DTLS fingerprint');
  if (!iceCredentials(offer)) throw new SdpError('bad_sdp', 'the offer has no ICE credentials (ice-ufrag, ice-pwd)');
  return { sdp: serializeSdp(sdp), tracks };
}

/** The ICE credentials of an SDP or fragment (media level first, then session level). */
export function iceCredentials(sdp: string): { ufrag: string; pwd: string } | null {
  const ufrag = /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1];
  const pwd = /^a=ice-pwd:(\S+)/m.exec(sdp)?.[1];
  return ufrag && pwd ? { ufrag, pwd } : null;
}

export interface TrickleFragment {
  ufrag: string | null;
  pwd: string | null;
  /** `candidate:…` attribute values with the mid of their section (or of the first). */
  candidates: Array<{ mid: string | null; candidate: string }>;
  endOfCandidates: boolean;
}

/** Parses an `application/trickle-ice-sdpfrag` body (RFC 8840 §9.2, RFC 9725 §4.3.1). */
export function parseTrickleFragment(body: string): TrickleFragment {
  const frag: TrickleFragment = { ufrag: null, pwd: null, candidates: [], endOfCandidates: false };
  let mid: string | null = null;
  for (const line of body.split(/\r?\n/)) {
    if (line === '') continue;
    if (!/^[a-z]=/.test(line)) throw new SdpError('bad_sdpfrag', `not an SDP line: ${line.slice(0, 40)}`);
    if (line.startsWith('m=')) mid = null;
    else if (line.startsWith('a=mid:')) mid = line.slice(6).trim();
    else if (line.startsWith('a=ice-ufrag:')) frag.ufrag = line.slice(12).trim();
    else if (line.startsWith('a=ice-pwd:')) frag.pwd = line.slice(10).trim();
    else if (line.startsWith('a=candidate:')) frag.candidates.push({ mid, candidate: line.slice(2).trim() });
    else if (line === 'a=end-of-candidates') frag.endOfCandidates = true;
  }
  return frag;
}

/** Rewrites the address of host candidates (a node behind 1:1 NAT announces its public address). */
export function announceAddress(sdp: string, address: string): string {
  return sdp.replace(/^(a=candidate:\S+ \d+ (?:udp|UDP|tcp|TCP) \d+ )(\S+)( \d+ typ host)/gm, `$1${address}$3`);
}
