// Ladder presets at the origin: a stream without a ladder is on `auto` (every preset's rungs, of
// which the media node publishes its source's preset), a named preset is that ladder, a ladder of
// its own is `custom`, and settings stored before presets keep their ladder. The lease tells the
// node; the multivariant playlist and the stream's status list only what the node publishes.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { AUTO_LADDER, LADDER_PRESETS } from '../../core/contracts/stream-config.ts';
import { ADMIN, AUDIO_INIT, FakeRendition, authorize, createStream, expectOk, worker } from './helpers.ts';

const names = (ladder: Array<{ name: string }>) => ladder.map((r) => r.name);

async function settingsOf(id: string) {
  const res = await worker(`/api/streams/${id}`, { headers: ADMIN });
  return (await res.json()) as {
    settings: { ladderPreset: string; ladder: Array<{ name: string }> };
    renditions: Array<{ rendition: string }>;
  };
}

describe('ladder presets', () => {
  it('the presets: 720p/480p/360p, 1080p/720p/480p/360p, 2160p/1440p/1080p/720p, each with AAC', () => {
    expect(names(LADDER_PRESETS['720p'])).toEqual(['720p', '480p', '360p', 'audio']);
    expect(names(LADDER_PRESETS['1080p'])).toEqual(['1080p', '720p', '480p', '360p', 'audio']);
    expect(names(LADDER_PRESETS['2160p'])).toEqual(['2160p', '1440p', '1080p', '720p', 'audio']);
  });

  it('no ladder given: auto, every preset rung in the lease with ladderPreset auto', async () => {
    const s = await createStream({ title: 'auto' });
    const got = await settingsOf(s.id);
    expect(got.settings.ladderPreset).toBe('auto');
    expect(names(got.settings.ladder)).toEqual(names(AUTO_LADDER));
    const lease = (await (await authorize(s.streamKey)).json()) as { ladderPreset: string; ladder: Array<{ name: string }> };
    expect(lease.ladderPreset).toBe('auto');
    expect(names(lease.ladder)).toEqual(['2160p', '1440p', '1080p', '720p', '480p', '360p', 'audio']);
  });

  it('a named preset is that ladder; with a ladder beside it the request is refused; a ladder alone is custom', async () => {
    const uhd = await createStream({ ladderPreset: '2160p' });
    expect(names((await settingsOf(uhd.id)).settings.ladder)).toEqual(['2160p', '1440p', '1080p', '720p', 'audio']);
    const both = await worker('/api/streams', {
      method: 'POST',
      headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ ladderPreset: '1080p', ladder: LADDER_PRESETS['720p'] }),
    });
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    const own = await createStream({ ladder: [{ name: 'only', kind: 'video', width: 640, height: 360, videoBitrate: 500_000 }] });
    expect((await settingsOf(own.id)).settings).toMatchObject({ ladderPreset: 'custom', ladder: [{ name: 'only' }] });
    const bad = await worker('/api/streams', {
      method: 'POST',
      headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ ladderPreset: '8k' }),
    });
    expect(bad.status).toBe(400);
  });

  it('settings stored before presets (a ladder, no preset) keep their ladder', async () => {
    const s = await createStream({});
    const legacy = {
      title: '',
      ladder: LADDER_PRESETS['720p'],
      partTarget: 0.2,
      segmentTarget: 1,
      dvrWindowSeconds: 7200,
      retentionDays: 7,
      fps: 30,
      playback: { policy: 'public' },
    };
    await env.DB.prepare('UPDATE streams SET settings = ? WHERE id = ?').bind(JSON.stringify(legacy), s.id).run();
    expect((await settingsOf(s.id)).settings).toMatchObject({ ladderPreset: 'custom', ladder: LADDER_PRESETS['720p'] });
    const lease = (await (await authorize(s.streamKey)).json()) as { ladderPreset: string };
    expect(lease.ladderPreset).toBe('custom');
  });

  it('auto: the multivariant playlist and the status list only the preset the node publishes', async () => {
    const s = await createStream({ title: 'a 1080p source' });
    const lease = (await (await authorize(s.streamKey)).json()) as { streamId: string; epoch: number; startMsn: number };
    const published = names(LADDER_PRESETS['1080p']);
    const renditions = published.map((name) => new FakeRendition(lease.streamId, lease.epoch, name, lease.startMsn));
    for (const r of renditions) {
      const video = {
        kind: 'video',
        codecs: 'avc1.640028',
        bandwidth: 5_000_000,
        averageBandwidth: 4_700_000,
        width: 1920,
        height: 1080,
        frameRate: 30,
        renditions: published,
      };
      expectOk(await r.init(r.name === 'audio' ? { ...AUDIO_INIT, renditions: published } : video));
    }
    for (const r of renditions) await r.segment();
    const multivariant = await (await worker(`/live/${s.id}/index.m3u8`)).text();
    for (const name of ['1080p', '720p', '480p', '360p']) expect(multivariant).toContain(`${name}/index.m3u8`);
    for (const name of ['2160p', '1440p']) expect(multivariant).not.toContain(`${name}/index.m3u8`);
    expect(names((await settingsOf(s.id)).renditions.map((r) => ({ name: r.rendition })))).toEqual(published);
  });
});
