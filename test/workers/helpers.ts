// Test helpers for the Worker: admin calls and signed ingest pushes, as a transcoder makes them.
import { exports } from 'cloudflare:workers';
import { HEADER_META, INGEST_PREFIX, pushPath, signIngestRequest } from '../../core/contracts/ingest-protocol.ts';

export const ORIGIN = 'http://edge.test';
export const ADMIN = { authorization: 'Bearer test-admin-token' };
export const SECRET = 'test-ingest-secret';

export function worker(input: string | Request, init?: RequestInit): Promise<Response> {
  const req = typeof input === 'string' ? new Request(input.startsWith('http') ? input : ORIGIN + input, init) : input;
  return exports.default.fetch(req);
}

/**
 * Publishers in these tests reconnect at any moment (the failover path: a new lease while the old
 * one is live), so streams take the `allow` takeover policy unless a test asks for another; the
 * default policy (refuse-while-live) has its own tests (takeover.test.ts).
 */
export const TAKEOVER_ALLOWED = { takeover: 'allow' } as const;

export async function createStream(settings: Record<string, unknown> = {}) {
  const res = await worker('/api/streams', {
    method: 'POST',
    headers: { ...ADMIN, 'content-type': 'application/json' },
    body: JSON.stringify({ ...TAKEOVER_ALLOWED, ...settings }),
  });
  if (res.status !== 201) throw new Error(`create failed ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; streamKey: string; ingest: { rtmp: string }; playback: { hls: string; watch: string } };
}

/** A request as a transcoder sends it: its `x-edgelive-*` headers signed with a timestamp and a fresh nonce. */
export async function signedRequest(
  method: string,
  path: string,
  body: Uint8Array<ArrayBuffer> | null,
  headers: Record<string, string> = {},
  secret = SECRET,
) {
  const all = await signIngestRequest(secret, method, path, body, { headers });
  return new Request(ORIGIN + path, { method, body: body ?? undefined, headers: all });
}

export async function signed(
  method: string,
  path: string,
  body: Uint8Array<ArrayBuffer> | null,
  headers: Record<string, string> = {},
  secret = SECRET,
) {
  return worker(await signedRequest(method, path, body, headers, secret));
}

/** `continues`: the epoch of the node's own session the lease continues (a ladder restart). */
export async function authorize(streamKey: string, nodeId = 'node-a', continues?: number) {
  const body = new TextEncoder().encode(JSON.stringify({ streamKey, nodeId, continues })) as Uint8Array<ArrayBuffer>;
  return signed('POST', `${INGEST_PREFIX}/authorize`, body, { 'content-type': 'application/json' });
}

/** What the edge serves for a segment of FakeRendition parts: their bytes joined, in order. */
export function joinedParts(epoch: number, rendition: string, msn: number, parts: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts * 64);
  for (let p = 0; p < parts; p++) out.set(bytes(`${epoch}/${rendition}/${msn}.${p}.m4s`), p * 64);
  return out;
}

export function bytes(label: string, size = 64): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  b.set(new TextEncoder().encode(label).slice(0, size));
  return b;
}

export const VIDEO_INIT = {
  kind: 'video',
  codecs: 'avc1.64001f',
  bandwidth: 3_150_000,
  averageBandwidth: 2_625_000,
  width: 1280,
  height: 720,
  frameRate: 30,
};
export const AUDIO_INIT = { kind: 'audio', codecs: 'mp4a.40.2', bandwidth: 140_800, averageBandwidth: 128_000, channels: 2 };

export function push(
  streamId: string,
  epoch: number,
  rendition: string,
  file: string,
  meta: unknown,
  body = bytes(`${epoch}/${rendition}/${file}`),
) {
  return signed('PUT', pushPath(streamId, epoch, rendition, file), body, { [HEADER_META]: JSON.stringify(meta) });
}

/** A publisher's pushes for one rendition: init, then parts and segments of `partsPerSegment` parts. */
export class FakeRendition {
  readonly streamId: string;
  readonly epoch: number;
  readonly name: string;
  msn: number;
  part = 0;
  pdt = Date.UTC(2026, 10, 21, 12, 0, 0);
  readonly partDuration: number;
  constructor(streamId: string, epoch: number, name: string, startMsn: number, partDuration = 0.2) {
    this.streamId = streamId;
    this.epoch = epoch;
    this.name = name;
    this.msn = startMsn;
    this.partDuration = partDuration;
  }
  init(meta: unknown = VIDEO_INIT) {
    return push(this.streamId, this.epoch, this.name, 'init.mp4', meta);
  }
  async nextPart(): Promise<Response> {
    const res = await push(this.streamId, this.epoch, this.name, `${this.msn}.${this.part}.m4s`, {
      duration: this.partDuration,
      independent: this.part === 0,
      programDateTime: this.pdt + this.part * this.partDuration * 1000,
    });
    this.part++;
    return res;
  }
  /** Closes the segment: the push carries no bytes (the segment is its parts joined). */
  async closeSegment(): Promise<Response> {
    const res = await push(
      this.streamId,
      this.epoch,
      this.name,
      `${this.msn}.m4s`,
      {
        duration: Math.round(this.part * this.partDuration * 1e6) / 1e6,
        partCount: this.part,
        programDateTime: this.pdt,
      },
      new Uint8Array(0),
    );
    this.pdt += this.part * this.partDuration * 1000;
    this.msn++;
    this.part = 0;
    return res;
  }
  async segment(parts = 5): Promise<void> {
    for (let i = 0; i < parts; i++) expectOk(await this.nextPart());
    expectOk(await this.closeSegment());
  }
}

export function expectOk(res: Response): void {
  if (res.status >= 300) throw new Error(`push answered ${res.status}`);
}
