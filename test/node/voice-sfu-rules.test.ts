// The party-voice SFU's pure parts: the offer a member makes (one sending audio section, receive
// slots, the roster channel) as the node shapes or refuses it, forwarded packets without the
// sender's header extensions, the node's SFU settings from its environment, and the Worker's
// switch size (VOICE_MESH_MAX) as the Room reads it.
import { describe, expect, it } from 'vitest';
import { parseVoiceSfuRoster, voiceSfuRoomUrl, voiceSfuSlots } from '../../core/contracts/voice-sfu.ts';
import { voiceConfigOf } from '../../durable-objects/room-voice.ts';
import { webrtcConfigFromEnv } from '../../transcoder-node/webrtc/config.ts';
import { withoutHeaderExtension } from '../../transcoder-node/webrtc/rtp-forward.ts';
import { parseSdp, SdpError } from '../../transcoder-node/webrtc/sdp.ts';
import { shapeSfuOffer } from '../../transcoder-node/webrtc/sfu-sdp.ts';

const audio = (mid: string, direction: string) => [
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:eV2i',
  'a=ice-pwd:1BRvrAT9ADnH1qYr0eHiRJQz',
  'a=fingerprint:sha-256 A2:D3:BD:8F:FC:E3:74:AF:CE:8B:C8:0D:66:5F:85:3B:8E:B3:77:DF:93:C3:E5:E2:3E:10:7E:5C:D8:BF:CF:49',
  'a=setup:actpass',
  `a=mid:${mid}`,
  'a=extmap:14 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  `a=${direction}`,
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:0 PCMU/8000',
];
const application = (mid: string) => [
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  `a=mid:${mid}`,
  'a=sctp-port:5000',
  'a=max-message-size:262144',
];
/** A browser's SFU offer: microphone (mid 0), `slots` receive slots, the roster channel. */
function offer(slots: number, opts: { first?: string; slot?: string; video?: boolean; channel?: boolean } = {}): string {
  const mids = Array.from({ length: slots + 2 }, (_, i) => String(i));
  const slotSections = Array.from({ length: slots }, (_, i) => audio(String(i + 1), opts.slot ?? 'recvonly'));
  if (opts.video && slotSections[0]) slotSections[0][0] = 'm=video 9 UDP/TLS/RTP/SAVPF 111';
  return [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mids.join(' ')}`,
    ...audio('0', opts.first ?? 'sendonly'),
    ...slotSections.flat(),
    ...(opts.channel === false ? [] : application(String(slots + 1))),
    '',
  ].join('\r\n');
}
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof SdpError ? err.code : String(err);
  }
  return null;
};

describe('shapeSfuOffer: what a member offers the SFU', () => {
  it('takes the first audio section as the microphone, every further one as a slot, each cut to Opus', () => {
    const shaped = shapeSfuOffer(offer(3), 49);
    expect(shaped.upstream.mid).toBe('0');
    expect(shaped.slots.map((s) => s.mid)).toEqual(['1', '2', '3']);
    expect(shaped.dataMid).toBe('4');
    for (const s of [shaped.upstream, ...shaped.slots]) expect([s.codec.name, s.codec.payloadType]).toEqual(['opus', 111]);
    const parsed = parseSdp(shaped.sdp);
    for (const m of parsed.media.filter((x) => x.kind === 'audio')) {
      expect(m.formats).toEqual(['111']);
      expect(m.lines.some((l) => /transport-cc|transport-wide-cc|red\/48000/.test(l))).toBe(false);
    }
    expect(parsed.media.at(-1)!.kind).toBe('application');
  });

  it('refuses a microphone that does not send, a slot that does not receive, video, too many slots, no channel, no slot', () => {
    expect(code(() => shapeSfuOffer(offer(2, { first: 'recvonly' }), 49))).toBe('bad_direction');
    expect(code(() => shapeSfuOffer(offer(2, { slot: 'sendonly' }), 49))).toBe('bad_direction');
    expect(code(() => shapeSfuOffer(offer(2, { video: true }), 49))).toBe('unsupported_media');
    expect(code(() => shapeSfuOffer(offer(5), 4))).toBe('too_many_slots');
    expect(code(() => shapeSfuOffer(offer(2, { channel: false }), 49))).toBe('unsupported_media');
    expect(code(() => shapeSfuOffer(offer(0), 49))).toBe('unsupported_media');
    expect(code(() => shapeSfuOffer(offer(1).replace(/opus\/48000\/2/g, 'foo/48000'), 49))).toBe('unsupported_codec');
    expect(code(() => shapeSfuOffer(offer(1).replace(/^a=fingerprint.*\r\n/gm, ''), 49))).toBe('bad_sdp');
  });
});

describe('forwarded packets', () => {
  it('lose the header extension (and the X bit), keep header, CSRCs and payload; packets without one are passed as they are', () => {
    const header = Buffer.from([0x91, 111, 0, 7, 0, 0, 0, 9, 0, 0, 0, 42]); // X=1, CC=1
    const csrc = Buffer.from([0, 0, 0, 5]);
    const ext = Buffer.from([0xbe, 0xde, 0x00, 0x02, 0x40, 0x30, 0, 0, 0x10, 0xff, 0, 0]);
    const payload = Buffer.from('opus-frame');
    const out = withoutHeaderExtension(Buffer.concat([header, csrc, ext, payload]));
    expect(out[0]).toBe(0x81);
    expect(out.subarray(1, 12)).toEqual(header.subarray(1));
    expect(out.subarray(12, 16)).toEqual(csrc);
    expect(out.subarray(16).toString()).toBe('opus-frame');
    const plain = Buffer.concat([Buffer.from([0x80, 111, 0, 7, 0, 0, 0, 9, 0, 0, 0, 42]), payload]);
    expect(withoutHeaderExtension(plain)).toBe(plain);
    // A length that runs past the packet is left alone (not read out of bounds).
    const broken = Buffer.concat([header.subarray(0, 12), csrc, Buffer.from([0xbe, 0xde, 0x00, 0x40])]);
    expect(withoutHeaderExtension(broken)).toBe(broken);
  });
});

describe('configuration', () => {
  it('the node serves the SFU only with VOICE_SFU_SECRET, with its caps', () => {
    expect(webrtcConfigFromEnv({}).sfu).toBeNull();
    expect(webrtcConfigFromEnv({ VOICE_SFU_SECRET: 's' }).sfu).toEqual({
      secret: 's',
      maxOfferBytes: 96 * 1024,
      maxPendingPerAddress: 4,
      maxSeats: 200,
      maxRoomSeats: 50,
    });
    expect(webrtcConfigFromEnv({ VOICE_SFU_SECRET: 's', VOICE_SFU_MAX_SEATS: '30', VOICE_SFU_MAX_ROOM_SEATS: '12' }).sfu).toMatchObject({
      maxSeats: 30,
      maxRoomSeats: 12,
    });
    expect(() => webrtcConfigFromEnv({ VOICE_SFU_SECRET: 's', VOICE_SFU_MAX_ROOM_SEATS: '1' })).toThrow(RangeError);
  });

  it('the Room switches at VOICE_MESH_MAX (1–8, default 8; a room setting wins), to an SFU only when both SFU variables are set', () => {
    expect(voiceConfigOf({}, undefined)).toEqual({ meshMax: 8, sfu: false });
    expect(voiceConfigOf({ VOICE_SFU_URL: 'http://n/voice', VOICE_SFU_SECRET: 's', VOICE_MESH_MAX: '2' }, undefined)).toEqual({
      meshMax: 2,
      sfu: true,
    });
    expect(voiceConfigOf({ VOICE_MESH_MAX: '20' }, undefined).meshMax).toBe(8);
    expect(voiceConfigOf({ VOICE_MESH_MAX: 'x' }, undefined).meshMax).toBe(8);
    expect(voiceConfigOf({ VOICE_MESH_MAX: '2' }, 5).meshMax).toBe(5);
    expect(voiceConfigOf({ VOICE_SFU_URL: 'http://n/voice' }, undefined).sfu).toBe(false);
  });

  it('the client: the room URL, slots for the others plus headroom within the room cap, the roster parsed or dropped', () => {
    expect(voiceSfuRoomUrl('https://media.example/voice/', 'party-1')).toBe('https://media.example/voice/party-1');
    expect([voiceSfuSlots(0, 50), voiceSfuSlots(8, 50), voiceSfuSlots(48, 50)]).toEqual([4, 12, 49]);
    expect(parseVoiceSfuRoster('{"type":"roster","slots":{"1":"c-a","2":null},"overflow":0,"forced":["c-a"]}')).toEqual({
      type: 'roster',
      slots: { '1': 'c-a', '2': null },
      overflow: 0,
      forced: ['c-a'],
    });
    for (const bad of ['nope', '{}', '{"type":"roster"}', 'null']) expect(parseVoiceSfuRoster(bad)).toBeNull();
  });
});
