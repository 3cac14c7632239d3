// The age of a live stream's newest listed media at the edge (wall clock minus the program-date-time
// at the playlist's end), sampled while a player is measured: the publisher's, the ladder's and the
// origin's share of glass to glass, shared by bench:player and bench:realtime.

const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/**
 * How old the newest media in the stream's `rendition` playlist is. On a starved machine it grows
 * without bound and every player's latency with it. A rung the node shed (a ladder below real time
 * restarts without its top rung) keeps its last playlist, whose age then grows with the wall clock:
 * sample a rung that is never shed (the lowest) where that can happen.
 */
export async function edgeAgeMs(workerUrl: string, streamId: string, rendition = '360p'): Promise<number> {
  const text = await (await fetch(`${workerUrl}/live/${streamId}/${rendition}/index.m3u8`)).text();
  const at = Date.now();
  let end = NaN;
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) end = Date.parse(line.slice(25));
    else if (line.startsWith('#EXT-X-PART:')) end += Number(/DURATION=([\d.]+)/.exec(line)?.[1] ?? 0) * 1000;
    else if (line.startsWith('#EXTINF:') && !text.includes('#EXT-X-PART:')) end += Number(line.slice(8).split(',')[0]) * 1000;
  }
  return at - end;
}

/** Samples edgeAgeMs every 250 ms until stopped: [wall ms, age ms] pairs. */
export function sampleEdgeAge(workerUrl: string, streamId: string, rendition = '360p'): { stop(): Promise<Array<[number, number]>> } {
  const samples: Array<[number, number]> = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const age = await edgeAgeMs(workerUrl, streamId, rendition).catch(() => NaN);
      if (Number.isFinite(age)) samples.push([Date.now(), age]);
      await sleep(250);
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return samples;
    },
  };
}

/** Each frame's distance behind the newest listed media: its glass to glass minus the edge's age when it was shown. */
export function behindEdge(glass: number[], shown: number[], ages: Array<[number, number]>): number[] {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < glass.length; i++) {
    while (j + 1 < ages.length && ages[j + 1]![0] <= shown[i]!) j++;
    const a = ages[j];
    if (a && Math.abs(a[0] - shown[i]!) < 1000) out.push(glass[i]! - a[1]);
  }
  return out;
}
