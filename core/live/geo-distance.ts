// Great-circle maths for geo-routed ingest: the distance between two points on the Earth, the
// Durable Object location hint nearest a point, and the order in which ingest nodes are offered
// to a publisher (nearest first, then least loaded). Pure: no request, no Worker globals.

export interface LatLon {
  latitude: number;
  longitude: number;
}

/** Mean Earth radius (IUGG), km. */
export const EARTH_RADIUS_KM = 6371.0088;

/**
 * Nodes whose distances differ by less than this are "as near" and are ordered by load instead:
 * two nodes in one metro area (or one data centre) should share the publishers, not the first
 * one registered take them all.
 */
export const DISTANCE_TIE_KM = 100;

const rad = (deg: number) => (deg * Math.PI) / 180;

/** Great-circle distance in km (haversine; accurate to ~0.5 % on the spherical Earth model). */
export function greatCircleKm(a: LatLon, b: LatLon): number {
  const dLat = rad(b.latitude - a.latitude);
  const dLon = rad(b.longitude - a.longitude);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.latitude)) * Math.cos(rad(b.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** `request.cf` carries latitude and longitude as strings; anything unusable is null. */
export function locationFromCf(cf: { latitude?: unknown; longitude?: unknown } | undefined | null): LatLon | null {
  if (!cf) return null;
  const latitude = Number(cf.latitude);
  const longitude = Number(cf.longitude);
  if (cf.latitude === undefined || cf.longitude === undefined || cf.latitude === '' || cf.longitude === '') return null;
  if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return null;
  if (Math.abs(latitude) > 90 || Math.abs(longitude) > 180) return null;
  return { latitude, longitude };
}

/** The Durable Object location hints (PLATFORM.md §1.7). */
export const LOCATION_HINTS = ['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me'] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

/** A representative point per hint (a large city near the middle of where that region's data centres are). */
const HINT_CENTRES: Record<LocationHint, LatLon> = {
  wnam: { latitude: 37.77, longitude: -122.42 }, // San Francisco
  enam: { latitude: 39.04, longitude: -77.49 }, // Ashburn
  sam: { latitude: -23.55, longitude: -46.63 }, // São Paulo
  weur: { latitude: 50.11, longitude: 8.68 }, // Frankfurt
  eeur: { latitude: 52.23, longitude: 21.01 }, // Warsaw
  apac: { latitude: 1.35, longitude: 103.82 }, // Singapore
  oc: { latitude: -33.87, longitude: 151.21 }, // Sydney
  afr: { latitude: -26.2, longitude: 28.05 }, // Johannesburg
  me: { latitude: 25.2, longitude: 55.27 }, // Dubai
};

/** The location hint whose centre is nearest to a point. */
export function nearestLocationHint(p: LatLon): LocationHint {
  let best: LocationHint = 'enam';
  let bestKm = Infinity;
  for (const hint of LOCATION_HINTS) {
    const km = greatCircleKm(p, HINT_CENTRES[hint]);
    if (km < bestKm) {
      best = hint;
      bestKm = km;
    }
  }
  return best;
}

/** What ordering needs to know about an ingest node. */
export interface RankableNode extends LatLon {
  nodeId: string;
  /** Sessions / capacity; 1 or more means full. */
  load: number;
}

export type Ranked<N> = N & { distanceKm: number | null };

/**
 * Orders nodes for a caller: nodes with room before full ones, then by great-circle distance
 * (in DISTANCE_TIE_KM bands), then by load, then by exact distance and node id so the order is
 * total and stable. Without a caller location, distance is unknown and load decides.
 */
export function rankIngestNodes<N extends RankableNode>(nodes: readonly N[], caller: LatLon | null): Array<Ranked<N>> {
  const ranked = nodes.map((n) => ({ ...n, distanceKm: caller ? greatCircleKm(caller, n) : null }));
  const band = (d: number | null) => (d === null ? 0 : Math.floor(d / DISTANCE_TIE_KM));
  return ranked.sort(
    (a, b) =>
      Number(a.load >= 1) - Number(b.load >= 1) ||
      band(a.distanceKm) - band(b.distanceKm) ||
      a.load - b.load ||
      (a.distanceKm ?? 0) - (b.distanceKm ?? 0) ||
      (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0),
  );
}
