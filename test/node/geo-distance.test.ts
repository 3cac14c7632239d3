// Great-circle distance, location hints and the order ingest nodes are offered in.
import { describe, expect, it } from 'vitest';
import { DISTANCE_TIE_KM, greatCircleKm, locationFromCf, nearestLocationHint, rankIngestNodes } from '../../core/live/geo-distance.ts';

const LONDON = { latitude: 51.5074, longitude: -0.1278 };
const PARIS = { latitude: 48.8566, longitude: 2.3522 };
const NEW_YORK = { latitude: 40.7128, longitude: -74.006 };
const SYDNEY = { latitude: -33.8688, longitude: 151.2093 };
const TOKYO = { latitude: 35.6762, longitude: 139.6503 };

describe('greatCircleKm', () => {
  it('matches known city distances within 0.5 %', () => {
    expect(greatCircleKm(LONDON, PARIS)).toBeCloseTo(343.5, -1);
    expect(Math.abs(greatCircleKm(LONDON, NEW_YORK) - 5570) / 5570).toBeLessThan(0.005);
    expect(Math.abs(greatCircleKm(SYDNEY, TOKYO) - 7820) / 7820).toBeLessThan(0.005);
  });
  it('is zero for a point, symmetric, and at most half the circumference (antipodes)', () => {
    expect(greatCircleKm(PARIS, PARIS)).toBe(0);
    expect(greatCircleKm(PARIS, TOKYO)).toBeCloseTo(greatCircleKm(TOKYO, PARIS), 9);
    const anti = greatCircleKm({ latitude: 10, longitude: 20 }, { latitude: -10, longitude: -160 });
    expect(anti).toBeCloseTo(Math.PI * 6371.0088, 3);
  });
  it('crosses the antimeridian the short way', () => {
    expect(greatCircleKm({ latitude: 0, longitude: 179.5 }, { latitude: 0, longitude: -179.5 })).toBeLessThan(112);
  });
});

describe('locationFromCf', () => {
  it('reads the string latitude/longitude Cloudflare sends', () => {
    expect(locationFromCf({ latitude: '51.5', longitude: '-0.12' })).toEqual({ latitude: 51.5, longitude: -0.12 });
  });
  it('treats a missing, empty, malformed or out-of-range position as unknown', () => {
    expect(locationFromCf(undefined)).toBeNull();
    expect(locationFromCf({})).toBeNull();
    expect(locationFromCf({ latitude: '', longitude: '' })).toBeNull();
    expect(locationFromCf({ latitude: 'x', longitude: '1' })).toBeNull();
    expect(locationFromCf({ latitude: '91', longitude: '0' })).toBeNull();
    expect(locationFromCf({ latitude: '0', longitude: '181' })).toBeNull();
  });
});

describe('nearestLocationHint', () => {
  it.each([
    [LONDON, 'weur'],
    [NEW_YORK, 'enam'],
    [{ latitude: 47.6, longitude: -122.3 }, 'wnam'],
    [SYDNEY, 'oc'],
    [TOKYO, 'apac'],
    [{ latitude: -34.6, longitude: -58.4 }, 'sam'],
    [{ latitude: 55.75, longitude: 37.62 }, 'eeur'],
    [{ latitude: -1.29, longitude: 36.82 }, 'afr'],
    [{ latitude: 24.71, longitude: 46.68 }, 'me'],
  ] as const)('%o → %s', (p, hint) => {
    expect(nearestLocationHint(p)).toBe(hint);
  });
});

describe('rankIngestNodes', () => {
  const node = (nodeId: string, p: { latitude: number; longitude: number }, load = 0) => ({ nodeId, ...p, load });
  it('orders by distance from the caller', () => {
    const ranked = rankIngestNodes([node('ny', NEW_YORK), node('syd', SYDNEY), node('par', PARIS)], LONDON);
    expect(ranked.map((n) => n.nodeId)).toEqual(['par', 'ny', 'syd']);
    expect(ranked[0]!.distanceKm).toBeCloseTo(greatCircleKm(LONDON, PARIS), 6);
  });
  it(`orders nodes within ${DISTANCE_TIE_KM} km of each other by load`, () => {
    const near = { latitude: PARIS.latitude + 0.3, longitude: PARIS.longitude };
    const ranked = rankIngestNodes([node('par-a', PARIS, 0.8), node('par-b', near, 0.1), node('ny', NEW_YORK, 0)], LONDON);
    expect(ranked.map((n) => n.nodeId)).toEqual(['par-b', 'par-a', 'ny']);
  });
  it('offers a full node only after every node with room, however near', () => {
    const ranked = rankIngestNodes([node('par', PARIS, 1), node('ny', NEW_YORK, 0.5)], LONDON);
    expect(ranked.map((n) => n.nodeId)).toEqual(['ny', 'par']);
  });
  it('without a caller location, load decides (then the node id, for a stable order)', () => {
    const ranked = rankIngestNodes([node('b', PARIS, 0.2), node('a', SYDNEY, 0.2), node('c', NEW_YORK, 0)], null);
    expect(ranked.map((n) => n.nodeId)).toEqual(['c', 'a', 'b']);
    expect(ranked.every((n) => n.distanceKm === null)).toBe(true);
  });
  it('does not change its input', () => {
    const input = [node('ny', NEW_YORK), node('par', PARIS)];
    rankIngestNodes(input, LONDON);
    expect(input.map((n) => n.nodeId)).toEqual(['ny', 'par']);
  });
});
