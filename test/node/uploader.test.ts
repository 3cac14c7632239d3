// RenditionUploader: pipelined pushes (a few in flight per rendition), the init alone, retries,
// refusals for good and back-pressure, against origins made of promises the test controls.
import { describe, expect, it } from 'vitest';
import { OriginError } from '../../transcoder-node/origin-client.ts';
import { recordingLogger } from '../support/rtmp-testing.ts';
import { RenditionUploader, type UploadJob, type UploaderOptions } from '../../transcoder-node/uploader.ts';

const tick = () => new Promise((r) => setTimeout(r, 0));

function job(file: string): UploadJob {
  return { file, bytes: new Uint8Array([1, 2, 3]), meta: {}, readyAt: Date.now() };
}

/** An origin whose answers the test gives by hand: each send waits for `answer(file, …)`. */
function manualOrigin() {
  const calls: string[] = [];
  const open = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  const send = (j: UploadJob) =>
    new Promise<void>((resolve, reject) => {
      calls.push(j.file);
      open.set(j.file, { resolve, reject });
    });
  return {
    calls,
    /** Files sent and not answered yet. */
    inFlight: () => [...open.keys()],
    async answer(file: string, error?: OriginError) {
      const o = open.get(file);
      if (!o) throw new Error(`${file} is not in flight`);
      open.delete(file);
      if (error) o.reject(error);
      else o.resolve();
      await tick();
      await tick();
    },
    send,
  };
}

function uploader(send: UploaderOptions['send'], extra: Partial<UploaderOptions> = {}) {
  const fatal: OriginError[] = [];
  const acked: string[] = [];
  const u = new RenditionUploader({
    send,
    logger: recordingLogger(),
    baseDelayMs: 1,
    onFatal: (e) => fatal.push(e),
    onAck: (j) => acked.push(j.file),
    ...extra,
  });
  return { u, fatal, acked };
}

describe('RenditionUploader', () => {
  it('keeps three pushes in flight by default and starts the next as one is acknowledged', async () => {
    const origin = manualOrigin();
    const { u, acked } = uploader(origin.send);
    for (const f of ['1.0.m4s', '1.1.m4s', '1.2.m4s', '1.3.m4s', '1.4.m4s']) u.enqueue(job(f));
    expect(origin.inFlight()).toEqual(['1.0.m4s', '1.1.m4s', '1.2.m4s']);
    expect(u.pending).toBe(5);
    await origin.answer('1.0.m4s');
    expect(origin.inFlight()).toEqual(['1.1.m4s', '1.2.m4s', '1.3.m4s']);
    await origin.answer('1.1.m4s');
    await origin.answer('1.2.m4s');
    await origin.answer('1.3.m4s');
    await origin.answer('1.4.m4s');
    expect(acked).toEqual(['1.0.m4s', '1.1.m4s', '1.2.m4s', '1.3.m4s', '1.4.m4s']);
    expect(u.pending).toBe(0);
    await u.whenIdle();
  });

  it('retires the window in order: a later push acknowledged first frees no slot until the earlier one is', async () => {
    const origin = manualOrigin();
    const { u } = uploader(origin.send);
    for (const f of ['1.0.m4s', '1.1.m4s', '1.2.m4s', '1.3.m4s']) u.enqueue(job(f));
    await origin.answer('1.1.m4s');
    expect(origin.inFlight()).toEqual(['1.0.m4s', '1.2.m4s']);
    expect(u.pending).toBe(4);
    await origin.answer('1.0.m4s');
    expect(origin.inFlight()).toEqual(['1.2.m4s', '1.3.m4s']);
    expect(u.pending).toBe(2);
  });

  it('sends the init segment alone: nothing beside it, nothing after it until it is acknowledged', async () => {
    const origin = manualOrigin();
    const { u } = uploader(origin.send);
    for (const f of ['init.mp4', '1.0.m4s', '1.1.m4s']) u.enqueue(job(f));
    expect(origin.inFlight()).toEqual(['init.mp4']);
    await origin.answer('init.mp4');
    expect(origin.inFlight()).toEqual(['1.0.m4s', '1.1.m4s']);
  });

  it('with maxInFlight 1 pushes strictly one after the other', async () => {
    const origin = manualOrigin();
    const { u } = uploader(origin.send, { maxInFlight: 1 });
    for (const f of ['1.0.m4s', '1.1.m4s']) u.enqueue(job(f));
    expect(origin.inFlight()).toEqual(['1.0.m4s']);
    await origin.answer('1.0.m4s');
    expect(origin.inFlight()).toEqual(['1.1.m4s']);
  });

  it('retries a retryable failure (a held push answered 503) while the others stay in flight', async () => {
    const origin = manualOrigin();
    const { u, acked, fatal } = uploader(origin.send);
    for (const f of ['1.0.m4s', '1.1.m4s']) u.enqueue(job(f));
    await origin.answer('1.1.m4s', new OriginError(503, 'predecessor_missing', 'the push before did not arrive in time'));
    await new Promise((r) => setTimeout(r, 20));
    expect(origin.calls).toEqual(['1.0.m4s', '1.1.m4s', '1.1.m4s']);
    await origin.answer('1.0.m4s');
    await origin.answer('1.1.m4s');
    expect(acked).toEqual(['1.0.m4s', '1.1.m4s']);
    expect(fatal).toEqual([]);
    expect(u.dead).toBe(false);
  });

  it('a refusal for good stops everything: onFatal once, queued pushes dropped, whenIdle resolves', async () => {
    const origin = manualOrigin();
    const { u, fatal } = uploader(origin.send);
    for (const f of ['1.0.m4s', '1.1.m4s', '1.2.m4s', '1.3.m4s']) u.enqueue(job(f));
    const idle = u.whenIdle();
    await origin.answer('1.0.m4s', new OriginError(409, 'stale_epoch', 'epoch 1 no longer holds the ingest lease'));
    await origin.answer('1.1.m4s', new OriginError(409, 'stale_epoch', 'epoch 1 no longer holds the ingest lease'));
    await idle;
    expect(fatal.map((e) => e.code)).toEqual(['stale_epoch']);
    expect(u.dead).toBe(true);
    expect(u.pending).toBe(0);
    u.enqueue(job('1.4.m4s'));
    expect(origin.calls).toEqual(['1.0.m4s', '1.1.m4s', '1.2.m4s']);
  });

  it('back-pressure: whenWritable waits while queued plus in-flight pushes reach the high-water mark', async () => {
    const origin = manualOrigin();
    const { u } = uploader(origin.send, { highWaterMark: 4 });
    for (const f of ['1.0.m4s', '1.1.m4s', '1.2.m4s', '1.3.m4s']) u.enqueue(job(f));
    let writable = false;
    void u.whenWritable().then(() => (writable = true));
    await tick();
    expect(writable).toBe(false);
    await origin.answer('1.0.m4s');
    expect(writable).toBe(true);
  });

  it('against an origin that holds pushes ahead of their predecessor, everything is announced once and in order', async () => {
    // The origin's contract (StreamState.ingest): a push is announced, then acknowledged, only
    // after every push before it; pushes reach it after a random network delay.
    const files = ['init.mp4'];
    for (let msn = 1; msn <= 6; msn++) {
      for (let p = 0; p < 5; p++) files.push(`${msn}.${p}.m4s`);
      files.push(`${msn}.m4s`);
    }
    const announced: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const waiters: Array<() => void> = [];
    const send = async (j: UploadJob) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, Math.random() * 8));
      const index = files.indexOf(j.file);
      while (announced.length < index) await new Promise<void>((r) => waiters.push(r));
      if (announced.length === index) announced.push(j.file);
      waiters.splice(0).forEach((w) => w());
      inFlight--;
    };
    const { u, acked } = uploader(send);
    for (const f of files) u.enqueue(job(f));
    await u.whenIdle();
    expect(announced).toEqual(files);
    expect(acked).toEqual(files);
    expect(maxInFlight).toBe(3);
  });
});
