// The offer a party-voice member makes to the SFU (pure: text in, text and facts out): its first
// audio section sends the member's microphone (the one upstream), every further audio section is a
// receive slot the SFU fills with another member's audio, and one data channel carries the roster
// (which member is on which slot). Each audio section is cut to Opus; video is refused (voice only).
import { chooseOpus, iceCredentials, keepOneCodec, parseSdp, SdpError, serializeSdp, type SdpCodec } from './sdp.ts';

export interface SfuOfferSlot {
  mid: string;
  codec: SdpCodec;
}

export interface ShapedSfuOffer {
  sdp: string;
  /** The member's microphone. */
  upstream: SfuOfferSlot;
  /** Sections the SFU sends other members' audio on, in the offer's order. */
  slots: SfuOfferSlot[];
  /** The data channel section's mid (the roster rides it). */
  dataMid: string;
}

export function shapeSfuOffer(offer: string, maxSlots: number): ShapedSfuOffer {
  const sdp = parseSdp(offer);
  let upstream: SfuOfferSlot | null = null;
  let dataMid: string | null = null;
  const slots: SfuOfferSlot[] = [];
  for (const section of sdp.media) {
    if (section.port === 0) continue;
    if (!section.mid) throw new SdpError('bad_sdp', 'every media section needs a mid (BUNDLE)');
    if (section.kind === 'application') {
      if (dataMid !== null) throw new SdpError('unsupported_media', 'one data channel section at most');
      dataMid = section.mid;
      continue;
    }
    if (section.kind !== 'audio') throw new SdpError('unsupported_media', `voice through the SFU is audio only, not ${section.kind}`);
    const codec = chooseOpus(section.codecs, section);
    if (!codec) {
      const offered = [...new Set(section.codecs.map((c) => c.name))].join(', ') || 'none';
      throw new SdpError('unsupported_codec', `audio must be Opus; offered: ${offered}`);
    }
    keepOneCodec(section, codec);
    if (upstream === null) {
      if (section.direction !== 'sendonly' && section.direction !== 'sendrecv')
        throw new SdpError('bad_direction', `the first audio section is the microphone and must send (it is ${section.direction})`);
      upstream = { mid: section.mid, codec };
      continue;
    }
    if (section.direction !== 'recvonly' && section.direction !== 'sendrecv')
      throw new SdpError('bad_direction', `a receive slot must receive (it is ${section.direction})`);
    slots.push({ mid: section.mid, codec });
  }
  if (upstream === null) throw new SdpError('unsupported_media', 'the offer has no audio section to send the microphone on');
  if (slots.length === 0) throw new SdpError('unsupported_media', 'the offer has no audio section to receive the others on');
  if (slots.length > maxSlots) throw new SdpError('too_many_slots', `at most ${maxSlots} receive slots (the room's seats but one)`);
  if (dataMid === null) throw new SdpError('unsupported_media', 'the offer needs a data channel (the roster of the slots rides it)');
  if (!/^a=fingerprint:\S+ [0-9A-Fa-f:]+/m.test(offer)) throw new SdpError('bad_sdp', 'the offer has no DTLS fingerprint');
  if (!iceCredentials(offer)) throw new SdpError('bad_sdp', 'the offer has no ICE credentials (ice-ufrag, ice-pwd)');
  return { sdp: serializeSdp(sdp), upstream, slots, dataMid };
}
