// Blocking playlist reload: directive parsing (BR-02, BR-03, DU-06) and the decision table of
// LLHLS.md §1.8 (BR-01..BR-09), checked rule by rule and swept around the live edge against an
// independent reference that searches the possible futures of the stream.
import { describe, expect, it } from 'vitest';
import {
  advancePartLimit,
  blockingTimeoutMs,
  decideBlockingReload,
  directiveCacheKey,
  liveEdge,
  normalizeRequest,
  parseHlsDirectives,
  type BlockingDecision,
  type BlockingState,
  type HlsDirectives,
} from '../../core/playlist/blocking.ts';

const parse = (query: string) => parseHlsDirectives(new URLSearchParams(query));
const ok = (query: string): HlsDirectives => {
  const r = parse(query);
  if (!r.ok) throw new Error(`${query}: ${r.message}`);
  return r.directives;
};

// ---- directives ----------------------------------------------------------------------------

describe('delivery directives', () => {
  it('parses msn, part and skip; no directive at all is fine', () => {
    expect(ok('')).toEqual({});
    expect(ok('_HLS_msn=12')).toEqual({ msn: 12 });
    expect(ok('_HLS_msn=12&_HLS_part=3')).toEqual({ msn: 12, part: 3 });
    expect(ok('_HLS_skip=YES')).toEqual({ skip: 'YES' });
    expect(ok('_HLS_msn=0&_HLS_part=0&_HLS_skip=v2')).toEqual({ msn: 0, part: 0, skip: 'v2' });
    expect(ok('token=abc&_HLS_msn=5&foo=1&_HLS_other=x')).toEqual({ msn: 5 });
    expect(ok('_HLS_msn=9007199254740991')).toEqual({ msn: Number.MAX_SAFE_INTEGER });
    expect(ok('_HLS_msn=007&_HLS_part=00')).toEqual({ msn: 7, part: 0 });
  });

  it('BR-02 _HLS_part without _HLS_msn is a 400', () => {
    expect(parse('_HLS_part=1')).toEqual({ ok: false, status: 400, code: 'part_without_msn', message: '_HLS_part requires _HLS_msn' });
    expect(parse('_HLS_part=1&_HLS_skip=YES')).toMatchObject({ ok: false, code: 'part_without_msn' });
  });

  it('BR-03 anything but a decimal-integer ≤ 2^53−1 is a 400', () => {
    const bad = [
      '_HLS_msn=-1',
      '_HLS_msn=%2B1',
      '_HLS_msn=1.5',
      '_HLS_msn=1e3',
      '_HLS_msn=0x10',
      '_HLS_msn=%201',
      '_HLS_msn=+1',
      '_HLS_msn=1%20',
      '_HLS_msn=',
      '_HLS_msn',
      '_HLS_msn=abc',
      '_HLS_msn=١٢', // Arabic-Indic digits
      '_HLS_msn=9007199254740992',
      '_HLS_msn=18446744073709551616',
      '_HLS_msn=99999999999999999999999999',
      '_HLS_msn=1&_HLS_part=-1',
      '_HLS_msn=1&_HLS_part=1.0',
      '_HLS_msn=1&_HLS_part=',
      '_HLS_msn=1&_HLS_part=0x1',
    ];
    for (const q of bad) expect(parse(q), q).toMatchObject({ ok: false, status: 400, code: 'invalid_directive' });
  });

  it('BR-03 a repeated directive is a 400, even with equal values', () => {
    for (const q of ['_HLS_msn=1&_HLS_msn=1', '_HLS_msn=1&_HLS_part=1&_HLS_part=2', '_HLS_skip=YES&_HLS_skip=YES']) {
      expect(parse(q), q).toMatchObject({ ok: false, status: 400, code: 'invalid_directive' });
    }
  });

  it('_HLS_skip takes YES or v2 only, case-sensitively', () => {
    for (const v of ['no', 'NO', 'yes', 'V2', 'v3', '', '1']) {
      expect(parse(`_HLS_skip=${v}`), v).toMatchObject({ ok: false, code: 'invalid_directive' });
    }
  });

  it('DU-06 the cache key is canonical: lexical directive order, normalised numbers, other params dropped', () => {
    const keys = [
      '_HLS_skip=YES&_HLS_part=2&_HLS_msn=10',
      '_HLS_msn=10&_HLS_part=2&_HLS_skip=YES',
      'token=x&_HLS_part=02&_HLS_msn=0010&_HLS_skip=YES',
    ].map((q) => directiveCacheKey(ok(q)));
    expect(new Set(keys)).toEqual(new Set(['_HLS_msn=10&_HLS_part=2&_HLS_skip=YES']));
    expect(directiveCacheKey({})).toBe('');
    expect(directiveCacheKey({ skip: 'v2' })).toBe('_HLS_skip=v2');
    expect(directiveCacheKey({ msn: 3 })).toBe('_HLS_msn=3');
  });
});

// ---- the decision table ----------------------------------------------------------------------

/** A rendition as explicit data: the final part count of each complete segment, and the open one. */
interface Model {
  firstMsn: number;
  /** Part counts of complete segments firstMsn, firstMsn+1, …; every complete segment has ≥ 1 part. */
  complete: number[];
  /** Parts published in the open segment (0 when it has none yet). */
  open: number;
  ended?: boolean;
  partTarget?: number;
}

/** The BlockingState exactly as the StreamState DO builds it from its segment records. */
function stateOf(m: Model): BlockingState {
  const records = m.complete.map((c, i) => ({ msn: m.firstMsn + i, done: true, partCount: c }));
  records.push({ msn: m.firstMsn + m.complete.length, done: false, partCount: m.open });
  const lastIsOpen = m.open > 0; // the DO creates the open record with its first part
  const list = lastIsOpen ? records : records.slice(0, -1);
  const last = list.at(-1);
  const lastComplete = last?.done ? last : list.at(-2);
  return {
    ended: m.ended ?? false,
    lastCompleteMsn: lastComplete?.msn ?? null,
    lastPartMsn: last?.msn ?? null,
    lastPartIndex: last ? last.partCount - 1 : null,
    partCountOf: (msn) => {
      const s = list.find((x) => x.msn === msn);
      return s?.done ? s.partCount : null;
    },
    partTarget: m.partTarget ?? 0.2,
    targetDuration: 1,
    firstMsn: m.firstMsn,
  };
}

type Ref = 'respond' | 'wait' | 'reject';

/**
 * Reference, written from the spec text without the implementation's shortcuts: list what is
 * published, apply the rollover, look for anything at or after the target, and when nothing is
 * there, search the futures of the stream (publish a part, or close the open segment once it has
 * one) for the fewest parts to publish until the requested part itself exists. That distance, not
 * the distance to "something later" (closing early would always make that 1), is what the advance
 * part limit bounds.
 */
function reference(m: Model, d: HlsDirectives): { action: Ref; until?: { msn: number; part?: number } } {
  if (m.ended) return { action: 'respond' };
  if (d.msn === undefined) return { action: 'respond' };
  const L = m.firstMsn + m.complete.length - 1;
  const openMsn = L + 1;
  if (d.msn > L + 2) return { action: 'reject' };
  const published: Array<[number, number]> = [];
  m.complete.forEach((c, i) => {
    for (let p = 0; p < c; p++) published.push([m.firstMsn + i, p]);
  });
  for (let p = 0; p < m.open; p++) published.push([openMsn, p]);
  const countOf = (msn: number) => (msn < m.firstMsn ? 1 : msn <= L ? m.complete[msn - m.firstMsn]! : undefined);
  if (d.part === undefined) {
    // A complete segment with MSN ≥ M; segments older than the window were complete too.
    return d.msn <= L ? { action: 'respond' } : { action: 'wait', until: { msn: d.msn } };
  }
  let target: [number, number] = [d.msn, d.part];
  const c = countOf(d.msn);
  if (c !== undefined && d.part >= c) target = [d.msn + 1, 0];
  const atOrAfter = ([a, b]: [number, number]) => a > target[0] || (a === target[0] && b >= target[1]);
  if (d.msn < m.firstMsn || published.some(atOrAfter)) return { action: 'respond' };
  // Breadth-first over futures: (open MSN, parts in it) → fewest publications reaching the target.
  const seen = new Set<string>();
  let frontier: Array<[number, number]> = [[openMsn, m.open]];
  let ahead = 0;
  search: for (; ahead < 100; ) {
    ahead++;
    const next: Array<[number, number]> = [];
    const expand = (msn: number, count: number) => {
      const k = `${msn}/${count}`;
      if (seen.has(k)) return;
      seen.add(k);
      next.push([msn, count]);
      if (count > 0) expand(msn + 1, 0); // closing costs no publication
    };
    for (const [msn, count] of frontier) {
      if (count > 0) expand(msn + 1, 0);
    }
    const grown: Array<[number, number]> = [];
    for (const [msn, count] of [...frontier, ...next]) {
      // Publishing part `count` of `msn`.
      if (msn === target[0] && count === target[1]) break search;
      if (msn <= target[0] && !grown.some(([a, b]) => a === msn && b === count + 1)) grown.push([msn, count + 1]);
    }
    frontier = grown;
  }
  const pt = m.partTarget ?? 0.2;
  const apl = pt < 1 ? 3 / pt : 3;
  if (ahead > apl) return { action: 'reject' };
  return { action: 'wait', until: { msn: target[0], part: target[1] } };
}

function decide(m: Model, d: HlsDirectives): BlockingDecision {
  return decideBlockingReload(stateOf(m), d);
}

const IN_PROGRESS: Model = { firstMsn: 1, complete: [5, 5, 5, 5, 5, 5, 5, 5, 5, 5], open: 3 }; // L = 10, parts 0..2 of 11
const JUST_CLOSED: Model = { firstMsn: 1, complete: [5, 5, 5, 5, 5, 5, 5, 5, 5, 6], open: 0 }; // L = 10 with 6 parts

describe('blocking reload decision table (§1.8)', () => {
  it('BR-00/BR-12 a request without directives is answered at once', () => {
    expect(decide(IN_PROGRESS, {})).toEqual({ action: 'respond', reason: 'not_blocking' });
    expect(decide(IN_PROGRESS, { skip: 'YES' })).toEqual({ action: 'respond', reason: 'not_blocking' });
  });

  it('BR-01 an ended playlist ignores every directive and answers the full playlist now', () => {
    const ended = { ...IN_PROGRESS, ended: true };
    for (const d of [{ msn: 11 }, { msn: 11, part: 9 }, { msn: 999 }, { msn: 10, part: 99, skip: 'YES' as const }, { part: 3 }]) {
      expect(decide(ended, d)).toEqual({ action: 'respond', reason: 'ended' });
    }
  });

  it('BR-02 a hand-built part without msn is still refused', () => {
    expect(decide(IN_PROGRESS, { part: 1 })).toMatchObject({ action: 'reject', status: 400, code: 'part_without_msn' });
  });

  it('BR-03 non-integer directives that bypassed the parser are refused', () => {
    for (const d of [{ msn: -1 }, { msn: 1.5 }, { msn: 11, part: -1 }, { msn: Number.NaN }, { msn: 2 ** 64 }]) {
      expect(decide(IN_PROGRESS, d)).toMatchObject({ action: 'reject', status: 400, code: 'invalid_directive' });
    }
  });

  it('BR-04 _HLS_msn alone waits for a complete segment with MSN ≥ M', () => {
    expect(decide(IN_PROGRESS, { msn: 10 })).toEqual({ action: 'respond', reason: 'satisfied' });
    // Parts of 11 exist, but 11 is not complete.
    expect(decide(IN_PROGRESS, { msn: 11 })).toEqual({ action: 'wait', until: { msn: 11 } });
    expect(decide(IN_PROGRESS, { msn: 12 })).toEqual({ action: 'wait', until: { msn: 12 } });
    expect(decide({ ...IN_PROGRESS, complete: [...IN_PROGRESS.complete, 4], open: 0 }, { msn: 11 })).toMatchObject({ action: 'respond' });
  });

  it('BR-05 _HLS_msn+_HLS_part is satisfied by that part or anything later', () => {
    expect(decide(IN_PROGRESS, { msn: 11, part: 2 })).toMatchObject({ action: 'respond' });
    expect(decide(IN_PROGRESS, { msn: 11, part: 0 })).toMatchObject({ action: 'respond' });
    expect(decide(IN_PROGRESS, { msn: 11, part: 3 })).toEqual({ action: 'wait', until: { msn: 11, part: 3 } });
    expect(decide(IN_PROGRESS, { msn: 12, part: 0 })).toEqual({ action: 'wait', until: { msn: 12, part: 0 } });
    expect(decide(IN_PROGRESS, { msn: 10, part: 4 })).toMatchObject({ action: 'respond' });
  });

  it('BR-06 a part past the final part of a complete segment means part 0 of the next', () => {
    // hls.js asked msn=10&part=6 while 10 was open; 10 closed with 6 parts (0..5).
    expect(decide(JUST_CLOSED, { msn: 10, part: 6 })).toEqual({ action: 'wait', until: { msn: 11, part: 0 } });
    expect(decide(JUST_CLOSED, { msn: 10, part: 40 })).toEqual({ action: 'wait', until: { msn: 11, part: 0 } });
    expect(decide(JUST_CLOSED, { msn: 10, part: 5 })).toMatchObject({ action: 'respond' });
    // Once part 0 of 11 is out the same request is answered.
    expect(decide({ ...JUST_CLOSED, open: 1 }, { msn: 10, part: 6 })).toMatchObject({ action: 'respond' });
    // Rollover applies only to complete segments: the open one just waits for more parts.
    expect(decide(IN_PROGRESS, { msn: 11, part: 7 })).toEqual({ action: 'wait', until: { msn: 11, part: 7 } });
    expect(normalizeRequest(liveEdge(stateOf(JUST_CLOSED)), 10, 6)).toEqual({ msn: 11, part: 0 });
    expect(normalizeRequest(liveEdge(stateOf(JUST_CLOSED)), 11, 6)).toEqual({ msn: 11, part: 6 });
  });

  it('BR-07 already satisfied and too-old requests are answered at once with the whole playlist', () => {
    const window = { ...IN_PROGRESS, firstMsn: 100 }; // segments 100..109 complete, 110 open
    for (const d of [
      { msn: 1 },
      { msn: 1, part: 0 },
      { msn: 99, part: 50 },
      { msn: 100 },
      { msn: 105, part: 2 },
      { msn: 109, part: 4 },
      { msn: 0 },
    ]) {
      expect(decide(window, d), JSON.stringify(d)).toEqual({ action: 'respond', reason: 'satisfied' });
    }
  });

  it('BR-08 M > L + 2 is a 400; L + 2 is held', () => {
    expect(decide(IN_PROGRESS, { msn: 13 })).toMatchObject({ action: 'reject', status: 400, code: 'msn_too_far' });
    expect(decide(IN_PROGRESS, { msn: 13, part: 0 })).toMatchObject({ action: 'reject', code: 'msn_too_far' });
    expect(decide(IN_PROGRESS, { msn: Number.MAX_SAFE_INTEGER })).toMatchObject({ action: 'reject', code: 'msn_too_far' });
    expect(decide(IN_PROGRESS, { msn: 12 })).toMatchObject({ action: 'wait' });
  });

  it('BR-08 a part more than the advance part limit ahead of the last published part is a 400', () => {
    // PART-TARGET 0.2 → APL 15. Last published part is 11.2.
    expect(decide(IN_PROGRESS, { msn: 11, part: 17 })).toEqual({ action: 'wait', until: { msn: 11, part: 17 } }); // 15 ahead
    expect(decide(IN_PROGRESS, { msn: 11, part: 18 })).toMatchObject({ action: 'reject', status: 400, code: 'part_too_far' });
    // In L + 2, at least part 0..N must still come: N + 1 ahead.
    expect(decide(IN_PROGRESS, { msn: 12, part: 14 })).toMatchObject({ action: 'wait' });
    expect(decide(IN_PROGRESS, { msn: 12, part: 15 })).toMatchObject({ action: 'reject', code: 'part_too_far' });
    // Just closed: the open segment needs its own first part before L + 2 can start.
    expect(decide(JUST_CLOSED, { msn: 12, part: 13 })).toMatchObject({ action: 'wait' });
    expect(decide(JUST_CLOSED, { msn: 12, part: 14 })).toMatchObject({ action: 'reject', code: 'part_too_far' });
    // PART-TARGET ≥ 1 s → APL 3.
    const slow = { ...IN_PROGRESS, partTarget: 1 };
    expect(decide(slow, { msn: 11, part: 5 })).toMatchObject({ action: 'wait' });
    expect(decide(slow, { msn: 11, part: 6 })).toMatchObject({ action: 'reject', code: 'part_too_far' });
  });

  it('BR-08 advance part limit: 3 / PART-TARGET under 1 s, else 3', () => {
    expect([0.1, 0.2, 0.25, 0.3, 1 / 3, 0.33334, 0.5, 0.99, 1, 2, 6].map(advancePartLimit)).toEqual([30, 15, 12, 10, 9, 8, 6, 3, 3, 3, 3]);
  });

  it('BR-09 the caller gives up after 3 × TARGETDURATION', () => {
    expect(blockingTimeoutMs({ targetDuration: 1 })).toBe(3000);
    expect(blockingTimeoutMs({ targetDuration: 2 })).toBe(6000);
  });

  it('the first segment not complete yet (no L): its parts are requestable, msn waits', () => {
    const first: Model = { firstMsn: 1, complete: [], open: 2 };
    expect(stateOf(first).lastCompleteMsn).toBeNull();
    expect(decide(first, { msn: 1 })).toEqual({ action: 'wait', until: { msn: 1 } });
    expect(decide(first, { msn: 1, part: 1 })).toMatchObject({ action: 'respond' });
    expect(decide(first, { msn: 1, part: 2 })).toEqual({ action: 'wait', until: { msn: 1, part: 2 } });
    expect(decide(first, { msn: 2, part: 0 })).toMatchObject({ action: 'wait' });
    expect(decide(first, { msn: 3 })).toMatchObject({ action: 'reject', code: 'msn_too_far' });
    expect(decide(first, { msn: 0 })).toMatchObject({ action: 'respond' });
  });

  it('nothing published at all: the first MSN is waited for, beyond L + 2 is refused', () => {
    const none: BlockingState = {
      ended: false,
      lastCompleteMsn: null,
      lastPartMsn: null,
      lastPartIndex: null,
      partCountOf: () => null,
      partTarget: 0.2,
    };
    expect(decideBlockingReload(none, { msn: 1, part: 0 })).toEqual({ action: 'wait', until: { msn: 1, part: 0 } });
    expect(decideBlockingReload(none, { msn: 2 })).toMatchObject({ action: 'wait' });
    expect(decideBlockingReload(none, { msn: 3 })).toMatchObject({ action: 'reject' });
    expect(decideBlockingReload({ ...none, firstMsn: 500 }, { msn: 501 })).toMatchObject({ action: 'wait' });
  });

  it('an open record with no part yet (lastPartIndex −1) counts as no part', () => {
    const s: BlockingState = {
      ended: false,
      lastCompleteMsn: 10,
      lastPartMsn: 11,
      lastPartIndex: -1,
      partCountOf: (m) => (m === 10 ? 5 : null),
      partTarget: 0.2,
    };
    expect(liveEdge(s)).toEqual({ lastCompleteMsn: 10, lastCompleteParts: 5, openParts: 0 });
    expect(decideBlockingReload(s, { msn: 10, part: 5 })).toEqual({ action: 'wait', until: { msn: 11, part: 0 } });
  });

  it('sweep: (M, N) around the live edge agrees with the reference in every state', () => {
    const states: Model[] = [
      IN_PROGRESS,
      JUST_CLOSED,
      { firstMsn: 1, complete: [5, 5, 5], open: 1 },
      { firstMsn: 1, complete: [5, 5, 5], open: 5 },
      { firstMsn: 1, complete: [5, 5, 5], open: 9 },
      { firstMsn: 40, complete: [1, 1, 1, 1], open: 0 },
      { firstMsn: 40, complete: [3, 7, 2], open: 2, partTarget: 0.5 },
      { firstMsn: 40, complete: [3, 7, 2], open: 0, partTarget: 1 },
      { firstMsn: 1, complete: [], open: 1 },
      { firstMsn: 1, complete: [], open: 4, partTarget: 0.25 },
      { firstMsn: 7, complete: [4], open: 0 },
      { ...IN_PROGRESS, ended: true },
    ];
    let compared = 0;
    const outcomes = new Set<string>();
    for (const m of states) {
      const L = m.firstMsn + m.complete.length - 1;
      const apl = advancePartLimit(m.partTarget ?? 0.2);
      for (let M = L - 3; M <= L + 4; M++) {
        if (M < 0) continue;
        for (let N = -1; N <= apl + 2; N++) {
          const d: HlsDirectives = N < 0 ? { msn: M } : { msn: M, part: N };
          const got = decide(m, d);
          const want = reference(m, d);
          const label = `${JSON.stringify(m)} M=${M} N=${N}`;
          expect(got.action, label).toBe(want.action);
          if (want.action === 'wait') expect(got, label).toEqual({ action: 'wait', until: want.until });
          outcomes.add(got.action === 'reject' ? got.code : got.action === 'respond' ? got.reason : got.action);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(1500);
    expect([...outcomes].sort()).toEqual(['ended', 'msn_too_far', 'part_too_far', 'satisfied', 'wait']);
  });

  it('a held request only ever moves from wait to respond as the stream advances, never to reject', () => {
    let seed = 3;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let trial = 0; trial < 200; trial++) {
      const m: Model = { firstMsn: 1, complete: [5, 5], open: Math.floor(rand() * 4), partTarget: [0.2, 0.5, 1][trial % 3] };
      const L = m.firstMsn + m.complete.length - 1;
      const apl = advancePartLimit(m.partTarget!);
      const d: HlsDirectives = { msn: L + Math.floor(rand() * 3), part: rand() < 0.2 ? undefined : Math.floor(rand() * (apl + 1)) };
      if (decide(m, d).action !== 'wait') continue;
      let responded = false;
      for (let step = 0; step < 60 && !responded; step++) {
        // Publish a part, sometimes closing the open segment first (never an empty one).
        if (m.open > 0 && rand() < 0.25) {
          m.complete.push(m.open);
          m.open = 0;
        } else m.open++;
        const now = decide(m, d);
        expect(now.action, JSON.stringify({ m, d })).not.toBe('reject');
        expect(now.action).toBe(reference(m, d).action);
        responded = now.action === 'respond';
      }
      expect(responded).toBe(true);
    }
  });
});
