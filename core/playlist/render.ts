// LL-HLS playlist text from plain snapshots: the media playlist of one rendition and the
// multivariant playlist. Pure string building, no I/O and no Worker globals (LLHLS.md §1.1–1.6, §1.10).
// Tag order and values follow the checklist IDs cited inline; every URI gets the optional query.
import type {
  MediaPlaylistSnapshot,
  PlaylistTiming,
  PresentationSnapshot,
  RenditionInfo,
  VodPlaylistSnapshot,
} from '../contracts/live-model.ts';
import { mediaFileName } from '../contracts/object-keys.ts';

export interface RenderOptions {
  /**
   * Query appended as `?{uriQuery}` to every URI written into the playlist (a playback token).
   * Given without the `?` (a leading `?` is tolerated). Must be URI-safe printable ASCII with no
   * `"` or `#`, because it lands inside quoted-strings (SYN-04).
   */
  uriQuery?: string;
}

/** EXT-X-VERSION of a full media playlist: EXT-X-MAP in an fMP4 playlist needs 6 (MP-01a). */
export const MEDIA_PLAYLIST_VERSION = 6;
/** EXT-X-VERSION of a delta update: EXT-X-SKIP needs 9 (MP-01, DU-04). */
export const DELTA_PLAYLIST_VERSION = 9;
/** EXT-X-VERSION of the multivariant playlist, kept equal to the media playlists' (MV-09). */
export const MULTIVARIANT_PLAYLIST_VERSION = 6;

/** Group id of the audio renditions in the multivariant playlist. */
export const AUDIO_GROUP_ID = 'audio';

/**
 * A decimal-floating-point (SYN-04): at most 5 decimals, trailing zeros trimmed, never exponent
 * notation, deterministic. Negative, NaN and infinite inputs are not valid durations and give `0`.
 */
export function formatDecimal(x: number): string {
  if (!(x > 0) || x === Infinity) return '0';
  if (x >= 1e21) return BigInt(Math.round(x)).toString(); // toFixed switches to exponents there
  if (Number.isInteger(x)) return String(x);
  const s = x.toFixed(5);
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48 /* 0 */) end--;
  if (s.charCodeAt(end - 1) === 46 /* . */) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** EXT-X-PROGRAM-DATE-TIME value: ISO 8601, millisecond precision, UTC `Z` (SEG-02). */
export function formatProgramDateTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** `?query` for the render options, validated once per render (not per URI). */
function querySuffix(opts: RenderOptions | undefined): string {
  let q = opts?.uriQuery;
  if (!q) return '';
  if (q.charCodeAt(0) === 63 /* ? */) q = q.slice(1);
  if (!q) return '';
  for (let i = 0; i < q.length; i++) {
    const c = q.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x22 /* " */ || c === 0x23 /* # */) {
      throw new TypeError('uriQuery must be printable URI-safe ASCII without spaces, quotes or #');
    }
  }
  return '?' + q;
}

/**
 * The SERVER-CONTROL and PART-INF lines: they depend on the per-stream constants only, so they
 * are byte-identical on every reload (MP-05, MP-06; AVPlayer rejects a changed PART-HOLD-BACK).
 */
function timingLines(t: PlaylistTiming): string {
  return (
    '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=' +
    formatDecimal(t.canSkipUntil) +
    ',HOLD-BACK=' +
    formatDecimal(t.holdBack) +
    ',PART-HOLD-BACK=' +
    formatDecimal(t.partHoldBack) +
    '\n#EXT-X-PART-INF:PART-TARGET=' +
    formatDecimal(t.partTarget) +
    '\n'
  );
}

/**
 * Renders one rendition's media playlist (full, or a delta update when `skippedSegments > 0`).
 *
 * Layout: header tags; per listed segment DISCONTINUITY, MAP (first listed segment and on every
 * epoch change), PROGRAM-DATE-TIME (every segment), its PARTs, then EXTINF + URI when complete
 * (after EXT-X-GAP for a gap segment); then PRELOAD-HINT (live only), RENDITION-REPORTs, and ENDLIST last when the stream ended.
 * The renderer does not prune parts or skip segments itself: the snapshot says what is listed
 * (see window.ts), so the text is a plain function of the snapshot.
 */
export function renderMediaPlaylist(snap: MediaPlaylistSnapshot, opts?: RenderOptions): string {
  const q = querySuffix(opts);
  const skipped = snap.skippedSegments;
  let out =
    '#EXTM3U\n#EXT-X-VERSION:' +
    (skipped > 0 ? DELTA_PLAYLIST_VERSION : MEDIA_PLAYLIST_VERSION) +
    '\n#EXT-X-TARGETDURATION:' +
    snap.timing.targetDuration +
    '\n' +
    timingLines(snap.timing) +
    (snap.startTimeOffset !== undefined
      ? startLine(snap.startTimeOffset)
      : !snap.ended && snap.timing.liveStartOffset > 0
        ? startLine(-snap.timing.liveStartOffset)
        : '') +
    // MEDIA-SEQUENCE before SKIP: older hls.js rejects the reverse order (MP-03).
    '#EXT-X-MEDIA-SEQUENCE:' +
    snap.mediaSequence +
    // Always present (MP-04, Apple 8.17): every epoch change brings a discontinuity.
    '\n#EXT-X-DISCONTINUITY-SEQUENCE:' +
    snap.discontinuitySequence +
    '\n';
  if (skipped > 0) out += '#EXT-X-SKIP:SKIPPED-SEGMENTS=' + skipped + '\n';

  const segments = snap.segments;
  let prevEpoch: number | undefined;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const parts = s.parts;
    const partCount = parts ? parts.length : 0;
    // An open segment without parts has no media and no PDT yet: nothing to list (the hint below
    // still names its first part).
    if (s.duration === null && partCount === 0) continue;
    const dir = s.epoch + '/';
    // DISCONTINUITY, MAP and PDT precede the parent's first PART (PART-05, SEG-03, MP-07).
    if (s.discontinuity) out += '#EXT-X-DISCONTINUITY\n';
    if (s.epoch !== prevEpoch) out += '#EXT-X-MAP:URI="' + dir + 'init.mp4' + q + '"\n';
    prevEpoch = s.epoch;
    out += '#EXT-X-PROGRAM-DATE-TIME:' + formatProgramDateTime(s.programDateTime) + '\n';
    for (let j = 0; j < partCount; j++) {
      const p = parts![j]!;
      out +=
        '#EXT-X-PART:DURATION=' +
        formatDecimal(p.duration) +
        ',URI="' +
        dir +
        mediaFileName({ kind: 'part', msn: s.msn, part: j }) +
        q +
        (p.independent ? '",INDEPENDENT=YES\n' : '"\n');
    }
    if (s.duration !== null) {
      // Media this rendition does not have (SEG-04): the segment keeps its MSN and duration.
      if (s.gap) out += '#EXT-X-GAP\n';
      out += '#EXTINF:' + formatDecimal(s.duration) + ',\n' + dir + mediaFileName({ kind: 'segment', msn: s.msn }) + q + '\n';
    }
  }

  const last = segments[segments.length - 1];
  // A playlist with ENDLIST carries no hint (MP-10, PH-07); a live one hints the next part (PH-02),
  // computed from the same file-name function as the PART it will become (PH-01). The next part
  // is part 0 of the next MSN once the last segment is complete or has its final part: never a
  // part the segmentation will not produce (PH-05).
  if (!snap.ended && !snap.noMedia && last) {
    let hintEpoch = last.epoch;
    let hintMsn = last.msn;
    let hintPart = 0;
    if (last.duration === null && !last.partsComplete) {
      hintPart = last.parts ? last.parts.length : 0;
      // The open segment starts a new init and nothing listed carries its MAP yet (PH-02).
      if (hintPart === 0 && last.epoch !== prevEpoch) {
        out += '#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="' + last.epoch + '/init.mp4' + q + '"\n';
      }
    } else {
      hintMsn = last.msn + 1;
      // A reconnected publisher publishes under its new epoch, with a new init (PH-02).
      if (snap.nextEpoch !== undefined && snap.nextEpoch !== last.epoch) {
        hintEpoch = snap.nextEpoch;
        out += '#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="' + hintEpoch + '/init.mp4' + q + '"\n';
      }
    }
    out +=
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="' + hintEpoch + '/' + mediaFileName({ kind: 'part', msn: hintMsn, part: hintPart }) + q + '"\n';
  }

  // One report per other rendition, relative to this playlist (RR-01..03). Kept after ENDLIST too:
  // App. B.1 asks for them in every media playlist, and their final values stay true.
  for (const r of snap.reports) {
    if (r.rendition === snap.rendition) continue;
    out +=
      '#EXT-X-RENDITION-REPORT:URI="../' + r.rendition + '/index.m3u8' + q + '",LAST-MSN=' + r.lastMsn + ',LAST-PART=' + r.lastPart + '\n';
  }
  // ENDLIST as the final line, like every ended playlist in the spec's examples.
  if (snap.ended) out += '#EXT-X-ENDLIST\n';
  return out;
}

/**
 * EXT-X-START (MP-11): where a player should begin, in seconds from the first segment, or when
 * negative from the end of the playlist. PRECISE=YES: present from exactly there, decoding from
 * the keyframe before it.
 *
 * A live playlist starts players `liveStartOffset` (2 × PART-TARGET) before its end. That is
 * closer than MP-11's SHOULD NOT (3 × TD) on purpose: stock players (hls.js, Shaka) play on from
 * where they start without catching up, so the start decides their latency; a start at
 * 2 × PART-TARGET plus a start-up of about a part lands near PART-HOLD-BACK. Players in
 * low-latency mode hold back by PART-HOLD-BACK anyway (Video.js clamps the start to it).
 */
function startLine(timeOffset: number): string {
  return '#EXT-X-START:TIME-OFFSET=' + (timeOffset < 0 ? '-' + formatDecimal(-timeOffset) : formatDecimal(timeOffset)) + ',PRECISE=YES\n';
}

/** EXT-X-VERSION of a VOD playlist: EXT-X-MAP needs 6 (BYTERANGE needs only 4). */
export const VOD_PLAYLIST_VERSION = 6;

/**
 * Renders a recording's or a clip's media playlist: EXT-X-PLAYLIST-TYPE:VOD, every segment with
 * its EXTINF, ENDLIST; it never changes (MP-09), so no parts, hints or reports. A discontinuity
 * (the publisher reconnected) gets DISCONTINUITY, a new MAP and its PDT; PDT is also on the first
 * segment, which dates every later one (SEG-02 asks for it on discontinuities; a 2-hour VOD
 * playlist stays small without one per segment). A clip ending mid-segment lists the first bytes
 * of that segment (EXT-X-BYTERANGE): the parts up to its end, which start with its keyframe.
 */
export function renderVodPlaylist(snap: VodPlaylistSnapshot, opts?: RenderOptions): string {
  const q = querySuffix(opts);
  let out =
    '#EXTM3U\n#EXT-X-VERSION:' +
    VOD_PLAYLIST_VERSION +
    '\n#EXT-X-TARGETDURATION:' +
    snap.targetDuration +
    '\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n';
  if (snap.startTimeOffset !== undefined && snap.startTimeOffset > 0) out += startLine(snap.startTimeOffset);
  let prevEpoch: number | undefined;
  for (let i = 0; i < snap.segments.length; i++) {
    const s = snap.segments[i]!;
    const dir = s.epoch + '/';
    // The first segment has nothing before it to be discontinuous with.
    const disc = i > 0 && (s.discontinuity || s.epoch !== prevEpoch);
    if (disc) out += '#EXT-X-DISCONTINUITY\n';
    if (s.epoch !== prevEpoch) out += '#EXT-X-MAP:URI="' + dir + 'init.mp4' + q + '"\n';
    if (i === 0 || disc) out += '#EXT-X-PROGRAM-DATE-TIME:' + formatProgramDateTime(s.programDateTime) + '\n';
    prevEpoch = s.epoch;
    if (s.gap) out += '#EXT-X-GAP\n';
    out += '#EXTINF:' + formatDecimal(s.duration) + ',\n';
    if (s.byteLength !== undefined) out += '#EXT-X-BYTERANGE:' + s.byteLength + '@0\n';
    out += dir + mediaFileName({ kind: 'segment', msn: s.msn }) + q + '\n';
  }
  return out + '#EXT-X-ENDLIST\n';
}

function byBandwidthDesc(a: RenditionInfo, b: RenditionInfo): number {
  // Deterministic order: bandwidth, then height, then name.
  return b.bandwidth - a.bandwidth || (b.height ?? 0) - (a.height ?? 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Renders the multivariant playlist: audio renditions as one EXT-X-MEDIA group, and one
 * EXT-X-STREAM-INF per video rendition, highest bandwidth first, whose BANDWIDTH,
 * AVERAGE-BANDWIDTH and CODECS include the audio (MV-01..07). Without video, each audio
 * rendition is a variant of its own.
 */
export function renderMultivariantPlaylist(p: PresentationSnapshot, opts?: RenderOptions): string {
  const q = querySuffix(opts);
  const audio: RenditionInfo[] = [];
  const video: RenditionInfo[] = [];
  for (const r of p.renditions) (r.kind === 'audio' ? audio : video).push(r);
  video.sort(byBandwidthDesc);

  // MV-07: every segment starts with an IDR (the transcoder cuts on keyframes), so say it once here.
  let out = '#EXTM3U\n#EXT-X-VERSION:' + MULTIVARIANT_PLAYLIST_VERSION + '\n#EXT-X-INDEPENDENT-SEGMENTS\n';

  if (video.length === 0) {
    for (const a of audio) {
      out +=
        '#EXT-X-STREAM-INF:BANDWIDTH=' +
        Math.round(a.bandwidth) +
        ',AVERAGE-BANDWIDTH=' +
        Math.round(a.averageBandwidth) +
        ',CODECS="' +
        a.codecs +
        '"\n' +
        a.name +
        '/index.m3u8' +
        q +
        '\n';
    }
    return out;
  }

  // Any audio rendition may play with any variant, so the variant declares the largest (MV-05).
  let audioPeak = 0;
  let audioAverage = 0;
  let audioCodecs = '';
  for (let i = 0; i < audio.length; i++) {
    const a = audio[i]!;
    out +=
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="' +
      AUDIO_GROUP_ID +
      '",NAME="' +
      a.name +
      // LANGUAGE on every non-video rendition (Apple 8.10); one DEFAULT per group (MV-06).
      '",LANGUAGE="und",DEFAULT=' +
      (i === 0 ? 'YES' : 'NO') +
      ',AUTOSELECT=YES,CHANNELS="' +
      (a.channels ?? 2) +
      '",URI="' +
      a.name +
      '/index.m3u8' +
      q +
      '"\n';
    audioPeak = Math.max(audioPeak, a.bandwidth);
    audioAverage = Math.max(audioAverage, a.averageBandwidth);
    if (!(',' + audioCodecs + ',').includes(',' + a.codecs + ',')) audioCodecs += (audioCodecs ? ',' : '') + a.codecs;
  }

  for (const v of video) {
    out +=
      '#EXT-X-STREAM-INF:BANDWIDTH=' +
      Math.round(v.bandwidth + audioPeak) +
      ',AVERAGE-BANDWIDTH=' +
      Math.round(v.averageBandwidth + audioAverage) +
      ',CODECS="' +
      v.codecs +
      (audioCodecs ? ',' + audioCodecs : '') +
      '"';
    if (v.width !== undefined && v.height !== undefined) out += ',RESOLUTION=' + v.width + 'x' + v.height;
    if (v.frameRate !== undefined) out += ',FRAME-RATE=' + v.frameRate.toFixed(3);
    if (audio.length > 0) out += ',AUDIO="' + AUDIO_GROUP_ID + '"';
    out += '\n' + v.name + '/index.m3u8' + q + '\n';
  }
  return out;
}
