// The pure rules of WHEP playback: the origin's ticket (core/contracts/whep.ts) admits one stream for
// a minute and nothing else; RTP is forwarded as one continuous flow across ladder restarts with
// each viewer's payload type and SSRC, video starts at a keyframe, viewers' RTCP is read; a
// browser's receive offer gets constrained baseline; the ladder's real-time outputs are one extra
// encode of the top rung (short GOP, baseline) and Opus, as RTP to the feed's ports.
import { describe, expect, it } from 'vitest';
import { mintWhepTicket, verifyWhepTicket, whepNodeUrl, WHEP_TICKET_TTL_SECONDS } from '../../core/contracts/whep.ts';
import { buildLadderArgs, DEFAULT_LADDER } from '../../transcoder-node/ladder.ts';
import { isRtcp, rewriteForViewer, rtcpFeedback, RtpContinuity, startsH264Keyframe } from '../../transcoder-node/webrtc/rtp-forward.ts';
import { chooseH264ForViewer, parseSdp, SdpError, shapeOffer, chooseOpus } from '../../transcoder-node/webrtc/sdp.ts';
import { webrtcConfigFromEnv } from '../../transcoder-node/webrtc/config.ts';

const SECRET = 'cluster-secret';

describe('WHEP tickets', () => {
  it('a ticket admits its stream until it expires, and only with the shared secret', async () => {
    const now = Date.UTC(2026, 0, 1);
    const ticket = await mintWhepTicket(SECRET, { sub: 'st_a', exp: now / 1000 + WHEP_TICKET_TTL_SECONDS });
    expect(await verifyWhepTicket(SECRET, ticket, 'st_a', now)).toEqual({ ok: true, claims: { sub: 'st_a', exp: now / 1000 + 60 } });
    expect(await verifyWhepTicket(SECRET, ticket, 'st_a', now + 60_000)).toMatchObject({ ok: true });
    expect(await verifyWhepTicket(SECRET, ticket, 'st_a', now + 61_000)).toMatchObject({ ok: false, code: 'ticket_expired' });
    expect(await verifyWhepTicket(SECRET, ticket, 'st_b', now)).toMatchObject({ ok: false, code: 'ticket_wrong_stream' });
    expect(await verifyWhepTicket('another-secret', ticket, 'st_a', now)).toMatchObject({ ok: false, code: 'invalid_ticket' });
  });

  it('tampered, truncated, oversized or malformed tickets are invalid', async () => {
    const now = Date.now();
    const ticket = await mintWhepTicket(SECRET, { sub: 'st_a', exp: Math.floor(now / 1000) + 60 });
    const [payload, mac] = ticket.split('.') as [string, string];
    // Claims for another stream under the first one's MAC.
    const forged = btoa(JSON.stringify({ sub: 'st_b', exp: Math.floor(now / 1000) + 60 })).replace(/=+$/, '');
    for (const bad of [
      `${forged}.${mac}`,
      payload,
      `${payload}.`,
      `${payload}.${mac}.x`,
      `${payload}.${mac.slice(0, -2)}`,
      `${payload}.${'A'.repeat(43)}`,
      `${payload}.${mac}`.padEnd(600, 'x'),
      '',
      '.',
      'not a ticket',
      `${payload}.%%%`,
    ]) {
      const v = await verifyWhepTicket(SECRET, bad, 'st_a', now);
      expect(v, bad.slice(0, 40)).toMatchObject({ ok: false, code: 'invalid_ticket' });
    }
  });

  it('the node URL carries the stream and the ticket', () => {
    expect(whepNodeUrl('https://node-1.example/whep/', 'st_a', 'p.m')).toBe('https://node-1.example/whep/st_a?ticket=p.m');
  });
});

/** An RTP packet: version 2, the given header fields, a payload. */
function rtp(o: { pt?: number; marker?: boolean; seq: number; ts: number; ssrc: number; payload?: number[] }): Buffer {
  const b = Buffer.alloc(12 + (o.payload?.length ?? 1));
  b[0] = 0x80;
  b[1] = (o.marker ? 0x80 : 0) | (o.pt ?? 96);
  b.writeUInt16BE(o.seq, 2);
  b.writeUInt32BE(o.ts >>> 0, 4);
  b.writeUInt32BE(o.ssrc >>> 0, 8);
  Buffer.from(o.payload ?? [0x41]).copy(b, 12);
  return b;
}
const header = (b: Buffer) => ({
  pt: b[1]! & 0x7f,
  marker: (b[1]! & 0x80) !== 0,
  seq: b.readUInt16BE(2),
  ts: b.readUInt32BE(4),
  ssrc: b.readUInt32BE(8),
});

describe('forwarding RTP', () => {
  it('the first flow goes out unchanged; a new source (a new ladder) continues sequence numbers and timestamps, the pause kept at clock rate', () => {
    const c = new RtpContinuity(90_000);
    const out = (p: Buffer, at: number) => (c.rewrite(p, at), header(p));
    expect(out(rtp({ seq: 65534, ts: 0xfffffff0, ssrc: 1 }), 1000)).toMatchObject({ seq: 65534, ts: 0xfffffff0 });
    expect(out(rtp({ seq: 65535, ts: 0xfffffff0 + 3000, ssrc: 1 }), 1033)).toMatchObject({ seq: 65535, ts: (0xfffffff0 + 3000) >>> 0 });
    // A reordered older packet goes out but does not become the reference.
    expect(out(rtp({ seq: 65533, ts: 0xfffffff0 - 3000, ssrc: 1 }), 1034)).toMatchObject({ seq: 65533 });
    // The ladder restarted 2 s later: new SSRC, random sequence and timestamp.
    const first = out(rtp({ seq: 100, ts: 5_000_000, ssrc: 2 }), 3033);
    expect(first.seq).toBe(0); // 65535 + 1, wrapped
    expect(first.ts).toBe((0xfffffff0 + 3000 + 2000 * 90) >>> 0);
    expect(out(rtp({ seq: 101, ts: 5_003_000, ssrc: 2 }), 3066)).toMatchObject({ seq: 1, ts: (first.ts + 3000) >>> 0 });
    expect(c.sources).toBe(2);
    // RTCP and non-RTP are not rewritten.
    expect(c.rewrite(Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 1]), 4000)).toBe(false);
    expect(c.rewrite(Buffer.from([1, 2, 3]), 4000)).toBe(false);
  });

  it('each viewer gets its payload type and SSRC, the marker bit kept', () => {
    const p = rtp({ pt: 96, marker: true, seq: 7, ts: 9, ssrc: 0x11111111 });
    rewriteForViewer(p, 108, 0xdeadbeef);
    expect(header(p)).toEqual({ pt: 108, marker: true, seq: 7, ts: 9, ssrc: 0xdeadbeef });
    rewriteForViewer(p, 102, 1);
    expect(header(p)).toEqual({ pt: 102, marker: true, seq: 7, ts: 9, ssrc: 1 });
  });

  it('a viewer can start at an SPS, a STAP-A holding one, or the first fragment of an IDR — nowhere else', () => {
    const at = (payload: number[]) => startsH264Keyframe(rtp({ seq: 1, ts: 1, ssrc: 1, payload }));
    expect(at([0x67, 0x42])).toBe(true); // SPS
    expect(at([0x65, 0x88])).toBe(true); // IDR slice, single NAL
    expect(at([0x68, 0xce])).toBe(false); // PPS alone
    expect(at([0x41, 0x9a])).toBe(false); // non-IDR slice
    expect(at([0x78, 0x00, 0x02, 0x09, 0x10, 0x00, 0x03, 0x67, 0x42, 0x00])).toBe(true); // STAP-A: AUD, SPS
    expect(at([0x78, 0x00, 0x02, 0x09, 0x10, 0x00, 0x02, 0x68, 0xce])).toBe(false); // STAP-A: AUD, PPS
    expect(at([0x7c, 0x85, 0x00])).toBe(true); // FU-A, start bit, IDR
    expect(at([0x7c, 0x05, 0x00])).toBe(false); // FU-A, middle of an IDR
    expect(at([0x7c, 0x81, 0x00])).toBe(false); // FU-A start of a non-IDR slice
    // A header extension and CSRCs are skipped to find the payload.
    const ext = Buffer.concat([Buffer.from([0x91, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0x67])]);
    expect(startsH264Keyframe(ext)).toBe(true);
    expect(startsH264Keyframe(Buffer.from([0x80, 96, 0]))).toBe(false);
  });

  it("reads keyframe requests and NACKs out of a viewer's compound RTCP", () => {
    const rr = [0x81, 201, 0, 7, ...Array(28).fill(0)];
    const pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
    const fir = [0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0];
    const nack = [0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 10, 0, 0];
    const remb = [0x8f, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
    const packet = Buffer.from([...rr, ...pli, ...fir, ...nack, ...remb]);
    expect(isRtcp(packet)).toBe(true);
    expect(rtcpFeedback(packet)).toEqual({ keyframeRequests: 2, nacks: 1, receiverReports: 1 });
    expect(rtcpFeedback(Buffer.from([...pli, 0x00, 0x01]))).toEqual({ keyframeRequests: 1, nacks: 0, receiverReports: 0 });
  });
});

/** Chromium 156's receive-only offer (video section trimmed to the H.264 entries it lists). */
const CHROME_RECV_OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 102 104 108 114 116 41',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 AA:BB',
  'a=setup:actpass',
  'a=mid:0',
  'a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'a=recvonly',
  'a=rtcp-mux',
  'a=rtpmap:96 VP8/90000',
  'a=rtpmap:102 H264/90000',
  'a=rtcp-fb:102 transport-cc',
  'a=rtcp-fb:102 nack',
  'a=rtcp-fb:102 nack pli',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:104 H264/90000',
  'a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f',
  'a=rtpmap:108 H264/90000',
  'a=rtcp-fb:108 nack',
  'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtpmap:114 H264/90000',
  'a=fmtp:114 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
  'a=rtpmap:116 H264/90000',
  'a=fmtp:116 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f',
  'a=rtpmap:41 H264/90000',
  'a=fmtp:41 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 0',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=recvonly',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=rtpmap:0 PCMU/8000',
  '',
].join('\r\n');

describe('a viewer offer', () => {
  const shape = (sdp: string) =>
    shapeOffer(sdp, { offererSends: false, offererReceives: true, video: chooseH264ForViewer, audio: chooseOpus });

  it('is answered with its constrained-baseline H.264 (mode 1) and Opus, nothing else', () => {
    const shaped = shape(CHROME_RECV_OFFER);
    expect(shaped.tracks.map((t) => [t.kind, t.mid, t.codec.payloadType])).toEqual([
      ['video', '0', 108],
      ['audio', '1', 111],
    ]);
    const video = parseSdp(shaped.sdp).media[0]!;
    expect(video.formats).toEqual(['108']);
    expect(video.lines.join('\n')).not.toMatch(/transport-cc|VP8|:102 /);
  });

  it('falls back to baseline, then to any mode-1 H.264, and refuses a sending or VP8-only offer', () => {
    const noCb = CHROME_RECV_OFFER.replace(/profile-level-id=42e01f/g, 'profile-level-id=4d001f');
    expect(shape(noCb).tracks[0]!.codec.payloadType).toBe(102);
    const highOnly = CHROME_RECV_OFFER.replace(/profile-level-id=42(e0|00)1f/g, 'profile-level-id=64001f');
    expect(shape(highOnly).tracks[0]!.codec.payloadType).toBe(102);
    expect(() => shape(CHROME_RECV_OFFER.replace('a=recvonly', 'a=sendonly'))).toThrow(SdpError);
    expect(() => shape(CHROME_RECV_OFFER.replace(/H264/g, 'VP9'))).toThrow(/video must be H.264/);
  });
});

describe('the ladder with real-time outputs', () => {
  const realtime = { videoPort: 40_000, audioPort: 40_002, keyframeIntervalSeconds: 0.5 };

  it('adds one baseline encode of the top rung with a short GOP and one Opus encode, as RTP to the feed, beside the HLS outputs', () => {
    const args = buildLadderArgs({ ladder: DEFAULT_LADDER, fps: 30, realtime });
    const graph = args[args.indexOf('-filter_complex') + 1]!;
    // The top rung (720p) is split for the real-time branch; audio is split after its resampling.
    expect(graph).toContain('split=2[v0][vrt]');
    expect(graph).toContain(',asplit=2[a0][art]');
    const tail = args.slice(args.lastIndexOf('[vrt]') - 1);
    expect(tail.slice(0, 2)).toEqual(['-map', '[vrt]']);
    expect(tail).toEqual(expect.arrayContaining(['libx264', 'baseline', 'zerolatency']));
    expect(tail[tail.indexOf('-g') + 1]).toBe('15');
    expect(tail[tail.indexOf('-b:v') + 1]).toBe('2500000');
    expect(tail).toContain('rtp://127.0.0.1:40000?pkt_size=1200');
    expect(tail).toContain('skip_rtcp');
    const audio = args.slice(args.lastIndexOf('[art]') - 1);
    expect(audio.slice(0, 4)).toEqual(['-map', '[art]', '-c:a', 'libopus']);
    expect(audio[audio.indexOf('-b:a') + 1]).toBe('128000');
    expect(audio.at(-1)).toBe('rtp://127.0.0.1:40002?pkt_size=1200');
    // The HLS outputs are what they are without it.
    const plain = buildLadderArgs({ ladder: DEFAULT_LADDER, fps: 30 });
    expect(args.slice(0, plain.indexOf('-filter_complex'))).toEqual(plain.slice(0, plain.indexOf('-filter_complex')));
    expect(args.slice(args.indexOf('-filter_complex') + 2, args.lastIndexOf('[vrt]') - 1)).toEqual(
      plain.slice(plain.indexOf('-filter_complex') + 2),
    );
  });

  it('with thumbnails the top rung is split three ways; a ladder without audio gets no Opus output', () => {
    const both = buildLadderArgs({ ladder: DEFAULT_LADDER, fps: 30, realtime, thumbnails: { intervalSeconds: 4 } });
    expect(both[both.indexOf('-filter_complex') + 1]).toContain('split=3[v0][vt][vrt]');
    const videoOnly = buildLadderArgs({ ladder: DEFAULT_LADDER.filter((r) => r.kind === 'video'), fps: 30, realtime });
    expect(videoOnly).not.toContain('libopus');
    expect(videoOnly).toContain('rtp://127.0.0.1:40000?pkt_size=1200');
  });

  it('WHEP settings come from the environment with their defaults', () => {
    expect(webrtcConfigFromEnv({}).whep).toEqual({
      maxOfferBytes: 32768,
      maxPendingPerAddress: 4,
      maxViewers: 200,
      keyframeIntervalMs: 500,
    });
    expect(webrtcConfigFromEnv({ WHEP_MAX_VIEWERS: '2', WHEP_KEYFRAME_INTERVAL_MS: '1000' }).whep).toMatchObject({
      maxViewers: 2,
      keyframeIntervalMs: 1000,
    });
    expect(() => webrtcConfigFromEnv({ WHEP_MAX_VIEWERS: '-1' })).toThrow(RangeError);
    expect(() => webrtcConfigFromEnv({ WHEP_KEYFRAME_INTERVAL_MS: '10' })).toThrow(RangeError);
  });
});
