// Blocking playlist reload: parsing the `_HLS_msn`/`_HLS_part`/`_HLS_skip` delivery directives and
// the server decision table of LLHLS.md §1.8 (BR-01..BR-08) over the DO's compact live-edge state.
// Pure: the DO calls `decideBlockingReload` on arrival and again after every publish.

/** Delivery directives of one playlist request, validated. Plain data (it crosses the DO RPC). */
export interface HlsDirectives {
  /** `_HLS_msn`: block until a segment (or, with `part`, a part) of this MSN or later exists. */
  msn?: number;
  /** `_HLS_part`: part index within `msn`. Never present without `msn`. */
  part?: number;
  /** `_HLS_skip`: ask for a delta update (DU-02). */
  skip?: 'YES' | 'v2';
}

export type DirectiveErrorCode = 'invalid_directive' | 'part_without_msn';

export type ParsedDirectives =
  | { ok: true; directives: HlsDirectives }
  | { ok: false; status: 400; code: DirectiveErrorCode; message: string };

const MSN = '_HLS_msn';
const PART = '_HLS_part';
const SKIP = '_HLS_skip';

/** A decimal-integer (SYN-04) that JavaScript holds exactly: digits only, at most 2^53 − 1. */
function parseDecimalInteger(s: string): number | null {
  if (s.length === 0) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  const n = Number(s);
  return n <= Number.MAX_SAFE_INTEGER ? n : null;
}

function bad(code: DirectiveErrorCode, message: string): ParsedDirectives {
  return { ok: false, status: 400, code, message };
}

/**
 * Reads the delivery directives from a playlist URL's query. Anything but a plain decimal-integer
 * (sign, space, decimal point, hex, empty, > 2^53 − 1) is a 400 (BR-03), as is a repeated
 * directive, an `_HLS_skip` other than `YES`/`v2`, and `_HLS_part` without `_HLS_msn` (BR-02).
 * Other query parameters (a playback token, unknown directives) are ignored.
 */
export function parseHlsDirectives(params: URLSearchParams): ParsedDirectives {
  const directives: HlsDirectives = {};
  const msn = params.getAll(MSN);
  const part = params.getAll(PART);
  const skip = params.getAll(SKIP);
  if (msn.length > 1 || part.length > 1 || skip.length > 1) {
    return bad('invalid_directive', 'a delivery directive appears more than once');
  }
  if (msn.length === 1) {
    const n = parseDecimalInteger(msn[0]!);
    if (n === null) return bad('invalid_directive', `${MSN} must be a decimal integer`);
    directives.msn = n;
  }
  if (part.length === 1) {
    const n = parseDecimalInteger(part[0]!);
    if (n === null) return bad('invalid_directive', `${PART} must be a decimal integer`);
    if (directives.msn === undefined) return bad('part_without_msn', `${PART} requires ${MSN}`);
    directives.part = n;
  }
  if (skip.length === 1) {
    const v = skip[0];
    if (v !== 'YES' && v !== 'v2') return bad('invalid_directive', `${SKIP} must be YES or v2`);
    directives.skip = v;
  }
  return { ok: true, directives };
}

/**
 * The directives as a canonical query string, in UTF-8 order msn < part < skip (DU-06), with
 * normalised numbers: equal requests get equal cache and coalescing keys. Empty when none.
 */
export function directiveCacheKey(d: HlsDirectives): string {
  let key = '';
  if (d.msn !== undefined) key = MSN + '=' + d.msn;
  if (d.part !== undefined) key += (key ? '&' : '') + PART + '=' + d.part;
  if (d.skip !== undefined) key += (key ? '&' : '') + SKIP + '=' + d.skip;
  return key;
}

/**
 * The live edge of one rendition as the DO knows it. `L` is the MSN of the last complete segment;
 * the open segment is always L + 1.
 */
export interface BlockingState {
  /** The playlist has EXT-X-ENDLIST. */
  ended: boolean;
  /** L: MSN of the last complete segment; null while none is complete. */
  lastCompleteMsn: number | null;
  /** MSN of the last published part (the open segment's, or L's right after L closed); null when none. */
  lastPartMsn: number | null;
  /** Index of that part within `lastPartMsn`; −1 or null when that segment has no part yet. */
  lastPartIndex: number | null;
  /**
   * Final part count of a complete segment, null/undefined when unknown. Only L is ever asked
   * (rollover, BR-06, matters for the newest complete segment alone), so the DO may answer just that.
   */
  partCountOf: (msn: number) => number | null | undefined;
  /** PART-TARGET, seconds: sets the advance part limit. */
  partTarget: number;
  /** Used only when nothing is published at all: the MSN the first segment will have (default 1). */
  firstMsn?: number;
  /** Not needed by the table; accepted so the DO can pass its timing along. */
  targetDuration?: number;
}

export type BlockingRejectCode = 'msn_too_far' | 'part_too_far' | 'part_without_msn' | 'invalid_directive';

export type BlockingDecision =
  /** Answer now with the current playlist (full, or delta when `_HLS_skip` asks for it). */
  | { action: 'respond'; reason: 'ended' | 'not_blocking' | 'satisfied' }
  /** Hold the request; `until` is the normalised target (after BR-06 rollover), `part` absent for msn-only. */
  | { action: 'wait'; until: { msn: number; part?: number } }
  | { action: 'reject'; status: 400; code: BlockingRejectCode; message: string };

/** Advance Part Limit: 3 / PART-TARGET when it is under 1 s, else 3 (§6.2.5.2). A whole number of parts. */
export function advancePartLimit(partTarget: number): number {
  if (!(partTarget > 0) || partTarget >= 1) return 3;
  // Distances are whole parts, so "more than 3/PT" is "more than ⌊3/PT⌋"; the epsilon keeps
  // 3 / 0.2 from landing just under 15.
  return Math.floor(3 / partTarget + 1e-9);
}

/** How long a blocked request may be held before the caller answers 503 (BR-09): 3 × TD. */
export function blockingTimeoutMs(timing: { targetDuration: number }): number {
  return 3 * timing.targetDuration * 1000;
}

/** The state reduced to the three numbers the table needs. */
export interface LiveEdge {
  /** L (firstMsn − 1 while no segment is complete). */
  lastCompleteMsn: number;
  /** Final part count of L, when known. */
  lastCompleteParts: number | undefined;
  /** Parts published so far in the open segment L + 1. */
  openParts: number;
}

export function liveEdge(state: BlockingState): LiveEdge {
  const partMsn = state.lastPartMsn;
  const partIndex = state.lastPartIndex ?? -1;
  const L = state.lastCompleteMsn ?? (partMsn !== null ? partMsn - 1 : (state.firstMsn ?? 1) - 1);
  const openParts = partMsn === L + 1 ? Math.max(0, partIndex + 1) : 0;
  let lastCompleteParts = state.lastCompleteMsn === null ? undefined : (state.partCountOf(L) ?? undefined);
  if (lastCompleteParts === undefined && partMsn === L && state.lastCompleteMsn !== null) lastCompleteParts = partIndex + 1;
  return { lastCompleteMsn: L, lastCompleteParts, openParts };
}

/**
 * BR-06 rollover: a part index beyond the final part of a complete segment M means part 0 of M + 1.
 * Returns the request unchanged otherwise (also when M's part count is unknown).
 */
export function normalizeRequest(edge: LiveEdge, msn: number, part: number): { msn: number; part: number } {
  if (msn === edge.lastCompleteMsn && edge.lastCompleteParts !== undefined && part >= edge.lastCompleteParts) {
    return { msn: msn + 1, part: 0 };
  }
  return { msn, part };
}

const RESPOND_ENDED: BlockingDecision = { action: 'respond', reason: 'ended' };
const RESPOND_NOT_BLOCKING: BlockingDecision = { action: 'respond', reason: 'not_blocking' };
const RESPOND_SATISFIED: BlockingDecision = { action: 'respond', reason: 'satisfied' };

function reject(code: BlockingRejectCode, message: string): BlockingDecision {
  return { action: 'reject', status: 400, code, message };
}

function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * The decision table of LLHLS.md §1.8, for a request whose directives are already parsed:
 * - BR-01 ended: respond at once with the full playlist, whatever the directives.
 * - BR-12 no `_HLS_msn`: not a blocking request, respond.
 * - BR-08 M > L + 2: reject 400.
 * - BR-04 msn only: respond once a complete segment with MSN ≥ M exists (M ≤ L), else wait.
 * - BR-06 part N ≥ final part count of complete M: the request becomes (M + 1, 0).
 * - BR-05/BR-07 with part: respond once part N of M or anything later exists (any M < L, part N
 *   of L, or a published part N of L + 1), else wait, unless that part is more than the advance
 *   part limit ahead of the last published part (BR-08, reject 400).
 * Already satisfied includes "too old" (BR-07): such requests are answered, never refused.
 * A held request only moves from wait to respond as parts appear (distances only shrink), so the
 * caller re-evaluates after each publish and answers 503 itself after `blockingTimeoutMs` (BR-09).
 * "Ahead" counts the parts that must still be published, up to and including the requested one;
 * for a part of L + 2 that is a lower bound (L + 1 may close after any part).
 */
export function decideBlockingReload(state: BlockingState, d: HlsDirectives): BlockingDecision {
  if (state.ended) return RESPOND_ENDED;
  if (d.msn === undefined) {
    // Parsed directives cannot have this; kept as a guard for callers that build directives by hand.
    return d.part === undefined ? RESPOND_NOT_BLOCKING : reject('part_without_msn', '_HLS_part requires _HLS_msn');
  }
  if (!isIndex(d.msn) || (d.part !== undefined && !isIndex(d.part))) {
    return reject('invalid_directive', 'delivery directives must be decimal integers');
  }
  const edge = liveEdge(state);
  const L = edge.lastCompleteMsn;
  if (d.msn > L + 2) {
    return reject('msn_too_far', `_HLS_msn=${d.msn} is more than two segments past the last one (${L})`);
  }
  if (d.part === undefined) {
    return d.msn <= L ? RESPOND_SATISFIED : { action: 'wait', until: { msn: d.msn } };
  }
  // Part N of a segment older than L, or any part of L within its count: it (or later) exists.
  if (d.msn < L) return RESPOND_SATISFIED;
  const { msn, part } = normalizeRequest(edge, d.msn, d.part);
  if (msn <= L) return RESPOND_SATISFIED;
  let ahead: number;
  if (msn === L + 1) {
    if (part < edge.openParts) return RESPOND_SATISFIED;
    ahead = part - edge.openParts + 1;
  } else {
    // L + 2: L + 1 must close first, with at least one part if it has none yet.
    ahead = (edge.openParts === 0 ? 1 : 0) + part + 1;
  }
  const apl = advancePartLimit(state.partTarget);
  if (ahead > apl) {
    return reject('part_too_far', `_HLS_part=${d.part} is ${ahead} parts ahead of the last published part (limit ${apl})`);
  }
  return { action: 'wait', until: { msn, part } };
}
