// The compact live model the StreamState DO keeps and returns as a snapshot; the edge renders
// playlists from it (the DO never renders text). Plain data, JSON- and structured-clone-safe.

/** Per-stream constants, fixed before the first playlist and never changed (MP-05, MP-06, MUT-01). */
export interface PlaylistTiming {
  /** EXT-X-TARGETDURATION, whole seconds. */
  targetDuration: number;
  /** EXT-X-PART-INF PART-TARGET, seconds; ≥ every part's duration. */
  partTarget: number;
  /** SERVER-CONTROL PART-HOLD-BACK, seconds; ≥ 3 × partTarget. */
  partHoldBack: number;
  /** SERVER-CONTROL HOLD-BACK, seconds: where players not in low-latency mode start; ≥ 3 × targetDuration. */
  holdBack: number;
  /**
   * Seconds before the end of a live playlist where players should start (EXT-X-START with a
   * negative TIME-OFFSET, on live playlists without an explicit start); 0 writes no EXT-X-START.
   */
  liveStartOffset: number;
  /** SERVER-CONTROL CAN-SKIP-UNTIL, seconds; ≥ 6 × targetDuration. */
  canSkipUntil: number;
}

export interface PartInfo {
  /** Seconds, from the fragment's sample durations. */
  duration: number;
  /** The part's first video sample is a sync sample (always true for audio). */
  independent: boolean;
}

export interface SegmentInfo {
  msn: number;
  /** Ingest lease epoch whose init segment (EXT-X-MAP) applies; objects live under it. */
  epoch: number;
  /** EXTINF seconds; null while the segment is still in progress (parts only). */
  duration: number | null;
  /** EXT-X-PROGRAM-DATE-TIME of the segment's first sample, ms since the Unix epoch. */
  programDateTime: number;
  /** First segment of a new epoch: EXT-X-DISCONTINUITY and a new EXT-X-MAP. */
  discontinuity: boolean;
  /** Parts, when still listed (near the live edge); undefined when pruned from the playlist. */
  parts?: PartInfo[];
  /**
   * Open segment whose final part is published (its EXTINF comes with the segment push that
   * follows): the next part is part 0 of the next MSN, and the preload hint names that.
   */
  partsComplete?: boolean;
  /**
   * No media of this rendition for this MSN (the other renditions have it, e.g. this one lagged
   * when the publisher reconnected): EXT-X-GAP with the others' EXTINF, so MSNs never skip and
   * stay aligned across renditions (SEG-04, MUT-04). Its URI is never published.
   */
  gap?: boolean;
}

export interface RenditionReport {
  rendition: string;
  /** MSN of the last part (or segment) published. */
  lastMsn: number;
  /** Part index of the last part with MSN = lastMsn. */
  lastPart: number;
}

/** Everything the edge needs to render one media playlist. */
export interface MediaPlaylistSnapshot {
  streamId: string;
  rendition: string;
  timing: PlaylistTiming;
  /** EXT-X-MEDIA-SEQUENCE: MSN of the first segment in the window (also when the response skips some). */
  mediaSequence: number;
  /** EXT-X-DISCONTINUITY-SEQUENCE. */
  discontinuitySequence: number;
  /** Segments that a delta update replaced by EXT-X-SKIP (0 for a full playlist). */
  skippedSegments: number;
  /** Listed segments, oldest first; the last one may be in progress (duration null). */
  segments: SegmentInfo[];
  /** The stream ended: EXT-X-ENDLIST, no preload hint. */
  ended: boolean;
  /**
   * Epoch of the live ingest lease when it is newer than the last listed segment's (a publisher
   * reconnected and its first part is still to come): the preload hints name that epoch's first
   * part and init segment, which is where they will be published (PH-01, PH-02).
   */
  nextEpoch?: number;
  /** No media is coming for this rendition in the current epoch (a rung the input cannot feed): no preload hint. */
  noMedia?: boolean;
  /** Reports for every other rendition of the presentation. */
  reports: RenditionReport[];
  /**
   * A start-over playlist (`?start=`): it begins at the requested point and asks players to start
   * there (EXT-X-START:TIME-OFFSET, seconds from its first segment, PRECISE=YES). Constant for
   * the life of that playlist URL, as MUT-01 requires.
   */
  startTimeOffset?: number;
}

export type RenditionKind = 'video' | 'audio';

/** What the multivariant playlist needs about one rendition (learnt from its init segment). */
export interface RenditionInfo {
  name: string;
  kind: RenditionKind;
  /** RFC 6381 codec string, e.g. `avc1.64001f` or `mp4a.40.2`. */
  codecs: string;
  /** Peak and average bits per second. */
  bandwidth: number;
  averageBandwidth: number;
  width?: number;
  height?: number;
  frameRate?: number;
  /** Audio channel count. */
  channels?: number;
}

/** The multivariant snapshot: renditions known for the current epoch. */
export interface PresentationSnapshot {
  streamId: string;
  renditions: RenditionInfo[];
  ended: boolean;
}

/** One segment of a VOD playlist (a recording or a clip): the live objects, listed as they are. */
export interface VodSegment {
  msn: number;
  epoch: number;
  /** EXTINF seconds (for a clip's last segment, up to the end of its last included part). */
  duration: number;
  programDateTime: number;
  /** The publisher reconnected before this segment: EXT-X-DISCONTINUITY and a new EXT-X-MAP. */
  discontinuity: boolean;
  /** Only the first bytes of the segment object (EXT-X-BYTERANGE n@0): a clip ending mid-segment. */
  byteLength?: number;
  /** No media of this rendition for this MSN: EXT-X-GAP (see SegmentInfo.gap). */
  gap?: boolean;
}

/** Everything the edge needs to render one VOD media playlist (EXT-X-PLAYLIST-TYPE:VOD, ENDLIST). */
export interface VodPlaylistSnapshot {
  rendition: string;
  /** EXT-X-TARGETDURATION: the stream's constant. */
  targetDuration: number;
  segments: VodSegment[];
  /** Seconds from the first segment's start where playback starts (a clip starting mid-segment). */
  startTimeOffset?: number;
}

/** One rendition's share of a stream's playback load on its StreamState (`GET /api/streams/:id/stats`). */
export interface PlaybackLoadRendition {
  rendition: string;
  /** Media playlist requests that reached the object (each edge coalesces identical ones). */
  playlistCalls: number;
  /** Media requests for an object R2 did not have yet, held by the object until it exists. */
  mediaWaits: number;
  /** Parts announced (listed in playlists from then on). */
  partsAnnounced: number;
}

/** The playback calls a StreamState has answered since it started (in memory: an eviction resets them). */
export interface PlaybackLoad {
  /** When the counting started (ISO 8601). */
  since: string;
  /** Multivariant playlist requests. */
  presentationCalls: number;
  renditions: PlaybackLoadRendition[];
}
