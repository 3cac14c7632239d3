// A publisher without an encoder for `bench:viewers` on a machine too busy to encode in real
// time: it takes the ingest lease like a transcoder and pushes, per rendition, an init segment,
// then a part every 200 ms (bytes of the rendition's bitrate; viewers never decode them) and each
// segment after its final part, signed like the transcoder's pushes and on its client.
import { OriginClient } from '../../transcoder-node/origin-client.ts';

export interface SyntheticRendition {
  name: string;
  kind: 'video' | 'audio';
  bitrate: number;
}

export interface SyntheticPublisher {
  /** When each part was ready to push (ms since the Unix epoch), per rendition, by `msn.part`. */
  readyAt: Map<string, Map<string, number>>;
  /** Pushes given up after three attempts. */
  failed(): number;
  stop(): Promise<void>;
}

const PART_MS = 200;
const PARTS_PER_SEGMENT = 5;
/** Pushes in flight per rendition (the transcoder's uploader keeps three). */
const IN_FLIGHT = 3;

export async function startSyntheticPublisher(o: {
  origin: string;
  secret: string;
  streamId: string;
  streamKey: string;
  renditions: SyntheticRendition[];
}): Promise<SyntheticPublisher> {
  const client = new OriginClient({ baseUrl: o.origin, secret: o.secret });
  const lease = await client.authorize(o.streamKey, 'bench-synthetic');
  const names = o.renditions.map((r) => r.name);
  const readyAt = new Map(names.map((n) => [n, new Map<string, number>()]));
  for (const r of o.renditions) {
    const meta =
      r.kind === 'video'
        ? {
            kind: 'video',
            codecs: 'avc1.64001e',
            bandwidth: Math.round(r.bitrate * 1.2),
            averageBandwidth: r.bitrate,
            width: 640,
            height: 360,
            frameRate: 30,
            renditions: names,
          }
        : {
            kind: 'audio',
            codecs: 'mp4a.40.2',
            bandwidth: Math.round(r.bitrate * 1.1),
            averageBandwidth: r.bitrate,
            channels: 2,
            renditions: names,
          };
    await client.push(o.streamId, lease.epoch, r.name, 'init.mp4', new Uint8Array(800), meta);
  }
  let stopped = false;
  let failed = 0;
  // A push that fails is tried twice more, then given up (counted): the bench carries on.
  const pushOnce = async (rendition: string, file: string, bytes: Uint8Array, meta: unknown) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await client.push(o.streamId, lease.epoch, rendition, file, bytes, meta);
      } catch {
        // retried below
      }
    }
    failed++;
  };
  const t0 = Date.now();
  const loops = o.renditions.map(async (r) => {
    const partBytes = Math.round((r.bitrate * PART_MS) / 1000 / 8);
    const parts: Uint8Array[] = [];
    // Pipelined like the transcoder's uploader: a few pushes in flight per rendition.
    const inFlight: Promise<unknown>[] = [];
    for (let k = 0; !stopped; k++) {
      const due = t0 + (k + 1) * PART_MS;
      await new Promise((res) => setTimeout(res, Math.max(0, due - Date.now())));
      const msn = lease.startMsn + Math.floor(k / PARTS_PER_SEGMENT);
      const part = k % PARTS_PER_SEGMENT;
      const final = part === PARTS_PER_SEGMENT - 1;
      const bytes = new Uint8Array(partBytes).fill(k & 0xff);
      const programDateTime = due - PART_MS;
      while (inFlight.length >= IN_FLIGHT) await inFlight.shift();
      readyAt.get(r.name)!.set(`${msn}.${part}`, Date.now());
      inFlight.push(
        pushOnce(r.name, `${msn}.${part}.m4s`, bytes, {
          duration: PART_MS / 1000,
          independent: part === 0 || r.kind === 'audio',
          programDateTime,
          ...(final ? { final: true } : {}),
        }),
      );
      parts.push(bytes);
      if (final) {
        const segment = Buffer.concat(parts);
        parts.length = 0;
        while (inFlight.length >= IN_FLIGHT) await inFlight.shift();
        inFlight.push(
          pushOnce(r.name, `${msn}.m4s`, segment, {
            duration: (PARTS_PER_SEGMENT * PART_MS) / 1000,
            partCount: PARTS_PER_SEGMENT,
            programDateTime: programDateTime - (PARTS_PER_SEGMENT - 1) * PART_MS,
          }),
        );
      }
    }
    await Promise.all(inFlight);
  });
  return {
    readyAt,
    failed: () => failed,
    async stop() {
      stopped = true;
      await Promise.allSettled(loops);
    },
  };
}
