// An LL-HLS client that follows a live media playlist the way hls.js does (blocking reloads with
// _HLS_msn/_HLS_part, asking for the next part right after each answer), parsing every response
// with m3u8-parser and checking the protocol rules a player relies on. Used by e2e tests and benches.
import { Parser } from 'm3u8-parser';

export interface ParsedPart {
  uri: string;
  duration: number;
  independent?: boolean;
}
export interface ParsedSegment {
  uri: string;
  duration: number;
  discontinuity?: boolean;
  map?: { uri: string };
  parts?: ParsedPart[];
  programDateTime?: number;
  dateTimeString?: string;
}
export interface ParsedPlaylist {
  mediaSequence: number;
  discontinuitySequence?: number;
  targetDuration: number;
  endList?: boolean;
  segments: ParsedSegment[];
  preloadSegment?: {
    parts?: ParsedPart[];
    map?: { uri: string };
    discontinuity?: boolean;
    dateTimeString?: string;
    preloadHints?: Array<{ type: string; uri: string }>;
  };
  partInf?: { partTarget: number };
  serverControl?: { canBlockReload?: boolean; partHoldBack?: number; canSkipUntil?: number };
  renditionReports?: Array<{ uri: string; lastMsn: number; lastPart: number }>;
  skip?: { skippedSegments: number };
}

/** Polls a media playlist until `test` holds of it (returned), or throws naming `what`. */
export async function waitForPlaylist(
  url: string,
  test: (pl: ParsedPlaylist) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<ParsedPlaylist> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url);
    if (res.ok) {
      const pl = parsePlaylist(await res.text());
      if (test(pl)) return pl;
    } else await res.body?.cancel();
    if (Date.now() > deadline) throw new Error(`${url}: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

export function parsePlaylist(text: string): ParsedPlaylist {
  const p = new Parser();
  p.push(text);
  p.end();
  return p.manifest as unknown as ParsedPlaylist;
}

/** m3u8-parser keeps preload hints on the open (preload) segment. */
export function preloadHints(pl: ParsedPlaylist): Array<{ type: string; uri: string }> {
  return pl.preloadSegment?.preloadHints ?? [];
}

/** The last part listed: its MSN and index (hls.js `lastPartSn`/`lastPartIndex`). */
export function lastPart(pl: ParsedPlaylist): { msn: number; index: number; inProgress: boolean } | null {
  const open = pl.preloadSegment?.parts ?? [];
  const msnOfOpen = pl.mediaSequence + (pl.skip?.skippedSegments ?? 0) + pl.segments.length;
  if (open.length > 0) return { msn: msnOfOpen, index: open.length - 1, inProgress: true };
  const last = pl.segments.at(-1);
  if (!last?.parts?.length) return null;
  return { msn: msnOfOpen - 1, index: last.parts.length - 1, inProgress: false };
}

/** Next blocking directives as hls.js computes them (base-playlist-controller.ts). */
export function nextDirectives(pl: ParsedPlaylist): { msn: number; part: number } | null {
  const lp = lastPart(pl);
  if (!lp) return null;
  if (!lp.inProgress) return { msn: lp.msn + 1, part: 0 };
  return { msn: lp.msn, part: lp.index + 1 };
}

export interface FollowSample {
  /** ms from request to response. */
  waitMs: number;
  directives: { msn: number; part: number } | null;
  playlist: ParsedPlaylist;
  text: string;
  receivedAt: number;
}

export interface RuleViolation {
  rule: string;
  detail: string;
}

/**
 * Checks one response against the previous one (LLHLS.md IDs). Returns every violation found;
 * an empty list means the response is a correct LL-HLS update.
 */
export function checkUpdate(
  prev: ParsedPlaylist | null,
  cur: ParsedPlaylist,
  text: string,
  req: { msn: number; part: number } | null,
  otherRenditions: number,
): RuleViolation[] {
  const v: RuleViolation[] = [];
  const add = (rule: string, detail: string) => v.push({ rule, detail });
  if (!text.startsWith('#EXTM3U\n')) add('SYN-01', 'first line is not #EXTM3U');
  const pt = cur.partInf?.partTarget;
  if (!pt) add('MP-06', 'no PART-INF');
  const sc = cur.serverControl;
  if (!sc?.canBlockReload) add('MP-05', 'no CAN-BLOCK-RELOAD');
  if (pt && (sc?.partHoldBack ?? 0) < 3 * pt - 1e-9) add('MP-05', `PART-HOLD-BACK ${sc?.partHoldBack} < 3 × ${pt}`);
  if ((sc?.canSkipUntil ?? 0) < 6 * cur.targetDuration) add('DU-01', 'CAN-SKIP-UNTIL < 6 × TD');
  if (prev) {
    if (prev.partInf?.partTarget !== pt) add('MP-06', 'PART-TARGET changed');
    if (prev.serverControl?.partHoldBack !== sc?.partHoldBack) add('MP-05', 'PART-HOLD-BACK changed');
    if (prev.targetDuration !== cur.targetDuration) add('MP-02', 'TARGETDURATION changed');
    if (cur.mediaSequence < prev.mediaSequence) add('MP-03', 'MEDIA-SEQUENCE decreased');
    // MUT-04: the same MSN keeps the same URI.
    const base = prev.mediaSequence + (prev.skip?.skippedSegments ?? 0);
    const curBase = cur.mediaSequence + (cur.skip?.skippedSegments ?? 0);
    prev.segments.forEach((s, i) => {
      const j = base + i - curBase;
      const c = cur.segments[j];
      if (j >= 0 && c && c.uri !== s.uri) add('MUT-04', `MSN ${base + i} was ${s.uri}, now ${c.uri}`);
    });
  }
  for (const s of cur.segments) {
    if (Math.round(s.duration) > cur.targetDuration) add('MP-02', `EXTINF ${s.duration} > TD`);
    if (!s.dateTimeString) add('SEG-02', `no PROGRAM-DATE-TIME on ${s.uri}`);
    if (!s.map) add('MP-07', `no EXT-X-MAP for ${s.uri}`);
    for (const p of s.parts ?? []) if (pt && p.duration > pt + 1e-9) add('PART-08', `part ${p.uri} ${p.duration} > ${pt}`);
    if (s.parts?.length) {
      const sum = s.parts.reduce((n, p) => n + p.duration, 0);
      if (Math.abs(sum - s.duration) > 0.002) add('SEG-01', `EXTINF ${s.duration} ≠ Σ parts ${sum.toFixed(4)} on ${s.uri}`);
    }
  }
  for (const p of cur.preloadSegment?.parts ?? []) if (pt && p.duration > pt + 1e-9) add('PART-08', `part ${p.uri} > PART-TARGET`);
  const allHints = preloadHints(cur);
  if (!cur.endList) {
    const hints = allHints.filter((h) => h.type === 'PART');
    if (hints.length !== 1) add('PH-02', `${hints.length} PART preload hints`);
    if ((cur.renditionReports ?? []).length !== otherRenditions)
      add('RR-03', `${cur.renditionReports?.length ?? 0} rendition reports, expected ${otherRenditions}`);
  } else if (allHints.length > 0) add('PH-07', 'preload hint with ENDLIST');
  if (req && !cur.endList) {
    const lp = lastPart(cur);
    const reached = lp && (lp.msn > req.msn || (lp.msn === req.msn && lp.index >= req.part));
    const completeMsn = cur.mediaSequence + (cur.skip?.skippedSegments ?? 0) + cur.segments.length - 1;
    if (!reached && !(completeMsn >= req.msn && req.part === 0)) add('BR-10', `response lacks ${req.msn}.${req.part}`);
  }
  return v;
}

export interface FollowOptions {
  /** Media playlist URL (absolute). */
  url: string;
  /** Stop after this many blocking updates. */
  updates: number;
  otherRenditions: number;
  onSample?: (s: FollowSample) => void;
  timeoutMs?: number;
  /**
   * Also request every hinted part as soon as its hint appears, the way Safari/AVPlayer preload
   * it (hls.js does not, LLHLS.md §2.1), without waiting for the answer. Each must be served once
   * it exists: a 404 (a hint naming a part that never comes, PH-01/PH-05) is a violation.
   */
  fetchHints?: boolean;
}

/** One hinted part requested by `fetchHints`. */
export interface HintFetch {
  uri: string;
  status: number;
  /** ms from the request to the answer (the part is held until it exists, PH-04). */
  waitMs: number;
}

/** Follows a live media playlist; returns every sample and every rule violation seen. */
export async function followPlaylist(
  o: FollowOptions,
): Promise<{ samples: FollowSample[]; violations: RuleViolation[]; hints: HintFetch[] }> {
  const samples: FollowSample[] = [];
  const violations: RuleViolation[] = [];
  const hinted = new Map<string, Promise<HintFetch>>();
  const fetchHint = (uri: string) => {
    const url = new URL(uri, o.url).href;
    if (hinted.has(url)) return;
    const t0 = performance.now();
    hinted.set(
      url,
      fetch(url, { signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) }).then(
        async (res) => {
          await res.arrayBuffer();
          return { uri, status: res.status, waitMs: performance.now() - t0 };
        },
        () => ({ uri, status: 0, waitMs: performance.now() - t0 }),
      ),
    );
  };
  let prev: ParsedPlaylist | null = null;
  let directives: { msn: number; part: number } | null = null;
  while (samples.length < o.updates) {
    const u = new URL(o.url);
    if (directives) {
      u.searchParams.set('_HLS_msn', String(directives.msn));
      u.searchParams.set('_HLS_part', String(directives.part));
    }
    const t0 = performance.now();
    const res = await fetch(u, { signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) });
    const text = await res.text();
    const waitMs = performance.now() - t0;
    if (res.status !== 200) {
      violations.push({ rule: 'HTTP', detail: `${res.status} for ${u.search}: ${text.slice(0, 200)}` });
      if (res.status === 503) {
        directives = null;
        continue;
      }
      break;
    }
    const playlist = parsePlaylist(text);
    violations.push(...checkUpdate(prev, playlist, text, directives, o.otherRenditions));
    if (o.fetchHints) for (const h of preloadHints(playlist)) if (h.type === 'PART') fetchHint(h.uri);
    const sample = { waitMs, directives, playlist, text, receivedAt: Date.now() };
    samples.push(sample);
    o.onSample?.(sample);
    if (playlist.endList) break;
    prev = playlist;
    directives = nextDirectives(playlist);
  }
  const hints = await Promise.all(hinted.values());
  for (const h of hints)
    if (h.status !== 200)
      violations.push({ rule: 'PH-04', detail: `hinted part ${h.uri} answered ${h.status} after ${Math.round(h.waitMs)} ms` });
  return { samples, violations, hints };
}
