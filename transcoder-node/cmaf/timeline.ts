// Keeps one broadcast on one media timeline across publisher reconnections: a new ingest epoch
// starts a new ffmpeg whose timestamps begin at 0 again, so every fragment's tfdt is moved by the
// epoch's time offset (from the lease). HLS allows the reset after EXT-X-DISCONTINUITY, but a
// timeline that never goes back plays better in recordings and clips: ffmpeg's fMP4 demuxer, fed
// a new init segment in one context, discards the first fragment whose tfdt went backwards.
import { BoxError, childBoxes, findChild, iterateBoxes } from '../../core/cmaf/boxes.ts';
import type { InitInfo } from '../../core/cmaf/fmp4.ts';

/**
 * A copy of `bytes` (fragments: [styp] moof mdat …) with every traf's tfdt advanced by
 * `offsetSeconds` in its track's timescale. Only the 64-bit tfdt (version 1, what ffmpeg writes)
 * is rewritten in place; a version-0 tfdt that the shift would overflow is an error.
 */
export function shiftFragmentTimes(bytes: Uint8Array, init: InitInfo, offsetSeconds: number): Uint8Array {
  if (offsetSeconds === 0) return bytes;
  const out = new Uint8Array(bytes);
  for (const box of iterateBoxes(out)) {
    if (box.type !== 'moof') continue;
    for (const traf of childBoxes(box)) {
      if (traf.type !== 'traf') continue;
      const tfhd = findChild(traf, 'tfhd');
      const tfdt = findChild(traf, 'tfdt');
      if (!tfhd || !tfdt) throw new BoxError('traf without tfhd or tfdt');
      const trackId = new DataView(tfhd.payload.buffer, tfhd.payload.byteOffset).getUint32(4);
      const track = init.tracks.find((t) => t.trackId === trackId);
      if (!track) throw new BoxError(`traf for track ${trackId}, which the init segment does not declare`);
      const ticks = BigInt(Math.round(offsetSeconds * track.timescale));
      const v = new DataView(tfdt.payload.buffer, tfdt.payload.byteOffset, tfdt.payload.byteLength);
      if (tfdt.payload[0] === 1) {
        v.setBigUint64(4, v.getBigUint64(4) + ticks);
      } else {
        const t = BigInt(v.getUint32(4)) + ticks;
        if (t > 0xffffffffn) throw new BoxError('a 32-bit tfdt cannot hold the shifted time');
        v.setUint32(4, Number(t));
      }
    }
  }
  return out;
}
