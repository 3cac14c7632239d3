// The media node's SDP rules (transcoder-node/webrtc/sdp.ts): a browser's offer is cut to one
// codec per track before the stack answers it, offers the ladder cannot use are refused with a
// reason, trickle fragments are read as RFC 8840 writes them, ICE servers become RFC 9725 Link
// headers, and the environment's WebRTC settings are checked.
import { describe, expect, it } from 'vitest';
import { webrtcConfigFromEnv } from '../../transcoder-node/webrtc/config.ts';
import {
  announceAddress,
  chooseH264,
  chooseOpus,
  parseSdp,
  parseTrickleFragment,
  SdpError,
  shapeOffer,
} from '../../transcoder-node/webrtc/sdp.ts';
import { iceServerLinks } from '../../transcoder-node/webrtc/trickle.ts';

/** What Chromium 156 offers for a sendonly camera and microphone (trimmed of extmaps it repeats). */
const CHROME_OFFER = [
  'v=0',
  'o=- 2156876403858154021 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 108 109 45 46 98 99 116 117 39 40 118 119 120',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:eV2i',
  'a=ice-pwd:1BRvrAT9ADnH1qYr0eHiRJQz',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 A2:D3:BD:8F:FC:E3:74:AF:CE:8B:C8:0D:66:5F:85:3B:8E:B3:77:DF:93:C3:E5:E2:3E:10:7E:5C:D8:BF:CF:49',
  'a=setup:actpass',
  'a=mid:0',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:toffset',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=sendonly',
  'a=msid:- 6123d904-1dd7-44d9-9293-aa748dda6343',
  'a=rtcp-mux',
  'a=rtcp-rsize',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 goog-remb',
  'a=rtcp-fb:96 transport-cc',
  'a=rtcp-fb:96 nack',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:102 H264/90000',
  'a=rtcp-fb:102 goog-remb',
  'a=rtcp-fb:102 transport-cc',
  'a=rtcp-fb:102 ccm fir',
  'a=rtcp-fb:102 nack',
  'a=rtcp-fb:102 nack pli',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:103 rtx/90000',
  'a=fmtp:103 apt=102',
  'a=rtpmap:108 H264/90000',
  'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
  'a=rtpmap:109 rtx/90000',
  'a=fmtp:109 apt=108',
  'a=rtpmap:116 red/90000',
  'a=rtpmap:39 AV1/90000',
  'a=ssrc-group:FID 1111 2222',
  'a=ssrc:1111 cname:abc',
  'a=ssrc:1111 msid:- 6123d904',
  'a=ssrc:2222 cname:abc',
  'a=ssrc:2222 msid:- 6123d904',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:eV2i',
  'a=ice-pwd:1BRvrAT9ADnH1qYr0eHiRJQz',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 A2:D3:BD:8F:FC:E3:74:AF:CE:8B:C8:0D:66:5F:85:3B:8E:B3:77:DF:93:C3:E5:E2:3E:10:7E:5C:D8:BF:CF:49',
  'a=setup:actpass',
  'a=mid:1',
  'a=extmap:14 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'a=sendonly',
  'a=msid:- ae8e4fd1-566a-4414-b9a2-73354098828a',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:13 CN/8000',
  'a=rtpmap:110 telephone-event/48000',
  'a=rtpmap:126 telephone-event/8000',
  'a=ssrc:3333 cname:abc',
  '',
].join('\r\n');

const WHIP = { offererSends: true, video: chooseH264, audio: chooseOpus };
const refusal = (offer: string) => {
  try {
    shapeOffer(offer, WHIP);
  } catch (err) {
    return err instanceof SdpError ? err.code : String(err);
  }
  return null;
};

describe('shapeOffer (WHIP: the publisher sends H.264 and Opus)', () => {
  const shaped = shapeOffer(CHROME_OFFER, WHIP);
  const parsed = parseSdp(shaped.sdp);

  it('keeps one codec per track: the first H.264 with packetization-mode=1, and Opus', () => {
    expect(shaped.tracks.map((t) => [t.kind, t.mid, t.codec.name, t.codec.payloadType])).toEqual([
      ['video', '0', 'H264', 102],
      ['audio', '1', 'opus', 111],
    ]);
    expect(parsed.media.map((m) => m.formats)).toEqual([['102'], ['111']]);
    expect(parsed.media[0]!.codecs).toEqual([
      { payloadType: 102, name: 'H264', clockRate: 90000, fmtp: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f' },
    ]);
    expect(parsed.media[1]!.codecs).toEqual([
      { payloadType: 111, name: 'opus', clockRate: 48000, channels: 2, fmtp: 'minptime=10;useinbandfec=1' },
    ]);
  });

  it('drops transport-wide congestion feedback (the node answers with REMB), RTX, RED and the RTX SSRC', () => {
    expect(shaped.sdp).not.toMatch(/transport-cc|transport-wide-cc/);
    expect(shaped.sdp).not.toMatch(/rtx|red\/|VP8|AV1|ssrc-group|a=ssrc:2222/);
    expect(shaped.sdp).toContain('a=rtcp-fb:102 goog-remb');
    expect(shaped.sdp).toContain('a=rtcp-fb:102 nack pli');
    expect(shaped.sdp).toContain('a=ssrc:1111 cname:abc');
    // Everything else of the session and the sections stays as offered.
    expect(shaped.sdp).toContain('a=group:BUNDLE 0 1');
    expect(shaped.sdp).toContain('a=fingerprint:sha-256 A2:D3');
    expect(shaped.sdp).toContain('a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid');
    expect(shaped.sdp.endsWith('\r\n')).toBe(true);
  });

  it('takes an audio-only and a video-only publisher', () => {
    const [head, video, audio] = CHROME_OFFER.split(/(?=^m=)/m);
    expect(shapeOffer(head! + audio!, WHIP).tracks.map((t) => t.kind)).toEqual(['audio']);
    expect(shapeOffer(head! + video!, WHIP).tracks.map((t) => t.kind)).toEqual(['video']);
  });

  it('refuses what the ladder cannot take, with a code', () => {
    expect(refusal(CHROME_OFFER.replace('packetization-mode=1', 'packetization-mode=0'))).toBe('unsupported_codec');
    expect(refusal(CHROME_OFFER.replace('a=rtpmap:111 opus/48000/2', 'a=rtpmap:111 ISAC/16000'))).toBe('unsupported_codec');
    expect(refusal(CHROME_OFFER.replace('a=sendonly', 'a=recvonly'))).toBe('bad_direction');
    expect(refusal(CHROME_OFFER + 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n')).toBe('unsupported_media');
    const [head, video, audio] = CHROME_OFFER.split(/(?=^m=)/m);
    expect(refusal(head! + video! + video!.replace('a=mid:0', 'a=mid:2') + audio!)).toBe('unsupported_media');
    expect(refusal(CHROME_OFFER.replace('a=mid:0\r\n', ''))).toBe('bad_sdp');
    expect(refusal('hello')).toBe('bad_sdp');
    expect(refusal(CHROME_OFFER.replace(/^a=fingerprint:.*\r\n/gm, ''))).toBe('bad_sdp');
    expect(refusal(CHROME_OFFER.replace(/^a=ice-pwd:.*\r\n/gm, ''))).toBe('bad_sdp');
    expect(refusal('v=0\r\ns=-\r\n')).toBe('unsupported_media');
    expect(refusal('v=0\r\nm=video x UDP 96\r\n')).toBe('bad_sdp');
  });
});

describe('trickle fragments (RFC 8840 as RFC 9725 §4.3.1 sends them)', () => {
  it('reads credentials, candidates with their mid, and the end of candidates', () => {
    const frag = parseTrickleFragment(
      [
        'a=ice-options:trickle ice2',
        'a=group:BUNDLE 0 1',
        'm=audio 9 RTP/AVP 0',
        'a=mid:0',
        'a=ice-ufrag:EsAw',
        'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1',
        'a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1',
        'a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host',
        'a=end-of-candidates',
        '',
      ].join('\r\n'),
    );
    expect(frag).toEqual({
      ufrag: 'EsAw',
      pwd: 'P2uYro0UCOQ4zxjKXaWCBui1',
      candidates: [
        { mid: '0', candidate: 'candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1' },
        { mid: '0', candidate: 'candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host' },
      ],
      endOfCandidates: true,
    });
  });
  it('refuses a body that is not SDP lines', () => {
    expect(() => parseTrickleFragment('{"candidate": "x"}')).toThrow(SdpError);
  });
});

describe('announced address and ICE server links', () => {
  it('rewrites host candidates only', () => {
    const sdp =
      'a=candidate:1 1 UDP 2122317823 10.0.0.5 50000 typ host\r\na=candidate:2 1 UDP 1686109951 198.51.100.9 50000 typ srflx raddr 10.0.0.5 rport 50000\r\n';
    expect(announceAddress(sdp, '203.0.113.7')).toBe(
      'a=candidate:1 1 UDP 2122317823 203.0.113.7 50000 typ host\r\na=candidate:2 1 UDP 1686109951 198.51.100.9 50000 typ srflx raddr 10.0.0.5 rport 50000\r\n',
    );
  });
  it('writes one Link per server, TURN credentials as parameters (RFC 9725 §4.6)', () => {
    expect(
      iceServerLinks([
        { urls: 'stun:stun.example.net:3478' },
        { urls: 'turn:turn.example.net:3478?transport=udp', username: 'u"1', credential: 'p' },
      ]),
    ).toEqual([
      '<stun:stun.example.net:3478>; rel="ice-server"',
      '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="u\\"1"; credential="p"; credential-type="password"',
    ]);
  });
});

describe('WebRTC settings from the environment', () => {
  it('defaults: signalling on 8088, CORS for the Worker origin, 32 KiB offers, ephemeral media ports', () => {
    const c = webrtcConfigFromEnv({ ORIGIN_URL: 'https://live.example.com/some/path' });
    expect(c.http).toEqual({ host: '0.0.0.0', port: 8088, corsOrigins: ['https://live.example.com'] });
    expect(c.whip).toEqual({ maxOfferBytes: 32768, maxPendingPerAddress: 4, maxBitrate: 5_000_000, mediaTimeoutMs: 10_000 });
    expect(c.stack).toEqual({ udpMux: false, iceServers: [] });
  });
  it('a port range, one muxed port, ICE servers with credentials, signalling off', () => {
    const c = webrtcConfigFromEnv({
      WEBRTC_PORT_MIN: '50000',
      WEBRTC_PORT_MAX: '50100',
      WEBRTC_UDP_MUX: '1',
      WEBRTC_HTTP_PORT: 'off',
      WEBRTC_ICE_SERVERS: 'stun:stun.l.example:19302, turn:us%40r:p%3Ass@turn.example:3478?transport=udp',
    });
    expect(c.stack.portRange).toEqual([50000, 50100]);
    expect(c.stack.udpMux).toBe(true);
    expect(c.http).toBeNull();
    expect(c.stack.iceServers).toEqual([
      { urls: 'stun:stun.l.example:19302' },
      { urls: 'turn:turn.example:3478?transport=udp', username: 'us@r', credential: 'p:ss' },
    ]);
  });
  it('refuses settings that cannot work', () => {
    expect(() => webrtcConfigFromEnv({ WEBRTC_UDP_MUX: '1' })).toThrow(/WEBRTC_PORT_MIN/);
    expect(() => webrtcConfigFromEnv({ WEBRTC_PORT_MIN: '5000', WEBRTC_PORT_MAX: '4000' })).toThrow(RangeError);
    expect(() => webrtcConfigFromEnv({ WHIP_MAX_OFFER_BYTES: '12' })).toThrow(RangeError);
    expect(() => webrtcConfigFromEnv({ WEBRTC_ICE_SERVERS: 'http://x' })).toThrow(/stun/);
  });
});
