// The session resources of the node's WebRTC endpoints (WHIP, WHEP, the SFU): the 201 answer to an
// offer (RFC 9725 §4.2, ICE servers as Link headers, §4.6), and trickle ICE by PATCH (§4.3, RFC
// 8840): candidates are added, an ICE restart (which libdatachannel cannot do) is refused with the
// status the RFC names, and the entity-tag is checked.
import { iceCredentials, parseTrickleFragment, SdpError } from './sdp.ts';
import { HttpError, type SignallingRequest, type SignallingResponse } from './signalling-server.ts';
import type { IceServerConfig } from './stack.ts';

export const SDP = 'application/sdp';
export const SDPFRAG = 'application/trickle-ice-sdpfrag';

/** RFC 9725 §4.6: one Link header per ICE server, credentials as link parameters. */
export function iceServerLinks(servers: IceServerConfig[]): string[] {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  return servers.map((s) =>
    [
      `<${s.urls}>; rel="ice-server"`,
      ...(s.username ? [`username=${q(s.username)}`, `credential=${q(s.credential ?? '')}`, 'credential-type="password"'] : []),
    ].join('; '),
  );
}

/**
 * The 201 answer to an offer: the session's resource and, for a session that takes trickle ICE
 * (`etag` given), its entity-tag and the PATCH media type.
 */
export function sessionCreated(location: string, answer: string, iceServers: IceServerConfig[], etag?: string): SignallingResponse {
  return {
    status: 201,
    headers: {
      'content-type': SDP,
      location,
      ...(etag ? { etag, 'accept-patch': SDPFRAG } : {}),
      ...(iceServers.length ? { link: iceServerLinks(iceServers) } : {}),
    },
    body: answer,
  };
}

/** OPTIONS on a session resource that takes trickle ICE. */
export const SESSION_OPTIONS: SignallingResponse = { status: 204, headers: { allow: 'OPTIONS, PATCH, DELETE', 'accept-patch': SDPFRAG } };

/** The media type of a request, without parameters, lower case. */
export function contentType(req: SignallingRequest): string {
  return String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
}

export interface TrickleTarget {
  /** The session's entity-tag (given with the 201). */
  etag: string;
  /** The offer as answered: its ICE credentials identify the client's ICE agent. */
  remoteOffer: string;
  addRemoteCandidate(candidate: string, mid: string | null): void;
}

export async function applyTricklePatch(
  req: SignallingRequest,
  target: TrickleTarget,
  maxBytes: number,
  protocol: 'WHIP' | 'WHEP',
): Promise<SignallingResponse> {
  if (contentType(req) !== SDPFRAG)
    throw new HttpError(415, 'unsupported_media_type', `a ${protocol} PATCH is ${SDPFRAG}`, { 'accept-patch': SDPFRAG });
  const ifMatch = req.headers['if-match'];
  // RFC 9725 §4.3.2: If-Match "*" asks for an ICE restart, which libdatachannel cannot do; the
  // RFC's answer for a session that trickles but does not restart is 422.
  const restart = protocol === 'WHIP' ? 'publish again' : 'start a new session';
  if (ifMatch === '*') throw new HttpError(422, 'ice_restart_unsupported', `this media node does not support ICE restarts: ${restart}`);
  if (ifMatch !== undefined && ifMatch !== target.etag)
    throw new HttpError(412, 'precondition_failed', 'the entity-tag does not match this session');
  const body = await req.readBody(maxBytes);
  let fragment: ReturnType<typeof parseTrickleFragment>;
  try {
    fragment = parseTrickleFragment(body);
  } catch (err) {
    if (err instanceof SdpError) throw new HttpError(400, err.code, err.message);
    throw err;
  }
  // New ICE credentials are a restart too.
  const current = iceCredentials(target.remoteOffer);
  if (fragment.ufrag && current && fragment.ufrag !== current.ufrag) {
    throw new HttpError(422, 'ice_restart_unsupported', `this media node does not support ICE restarts: ${restart}`);
  }
  for (const c of fragment.candidates) {
    try {
      target.addRemoteCandidate(c.candidate, c.mid);
    } catch (err) {
      throw new HttpError(400, 'bad_candidate', `a candidate was not accepted: ${(err as Error).message}`);
    }
  }
  return { status: 204 };
}
