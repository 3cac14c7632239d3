// What the media node says about a stream's ladder while a player is measured (its Prometheus
// /metrics): rungs shed for running below real time, the encoder's speed, and how long a part
// takes from the node to the origin. A starved ladder shows here before it shows in any player.

export interface NodeFigures {
  /** Rungs restarted away since the node started (edgelive_ladder_sheds_total, all renditions). */
  sheds: number;
  /** Media seconds per wall second over the node's window (edgelive_encoder_speed), NaN before the first. */
  speed: number;
  /** How far the encoded media is behind the wall clock since the ladder started (edgelive_encoder_lag_seconds). */
  lag: number;
  /** Parts acknowledged by the origin so far and their summed push time (edgelive_push_duration_seconds, kind="part"). */
  parts: number;
  partSeconds: number;
}

const value = (text: string, name: string, filter = ''): number[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name) && (l[name.length] === ' ' || l[name.length] === '{') && l.includes(filter))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));

/** Reads the node's /metrics (healthUrl: its /health URL, which /metrics sits beside). */
export async function nodeFigures(healthUrl: string, streamId: string): Promise<NodeFigures> {
  const text = await (await fetch(healthUrl.replace(/\/health$/, '/metrics'))).text();
  const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
  return {
    sheds: sum(value(text, 'edgelive_ladder_sheds_total')),
    speed: value(text, 'edgelive_encoder_speed', `stream="${streamId}"`)[0] ?? NaN,
    lag: value(text, 'edgelive_encoder_lag_seconds', `stream="${streamId}"`)[0] ?? NaN,
    parts: sum(value(text, 'edgelive_push_duration_seconds_count', 'kind="part"')),
    partSeconds: sum(value(text, 'edgelive_push_duration_seconds_sum', 'kind="part"')),
  };
}

/** Between two readings: rungs shed, parts pushed per second, and the mean push time of a part (ms). */
export function nodeDelta(a: NodeFigures, b: NodeFigures, seconds: number): string {
  const parts = b.parts - a.parts;
  const mean = parts > 0 ? ((b.partSeconds - a.partSeconds) / parts) * 1000 : NaN;
  return `node: encoder speed ${b.speed.toFixed(2)}× lag ${b.lag.toFixed(2)} s, ${(parts / seconds).toFixed(1)} parts/s pushed (all rungs), part push mean ${mean.toFixed(0)} ms, rungs shed ${b.sheds - a.sheds}${b.sheds ? ` (${b.sheds} since start)` : ''}`;
}
