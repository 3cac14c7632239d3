// One timeline per broadcast (transcoder-node/cmaf/timeline.ts): an epoch's fragments move by the
// lease's time offset, tfdt only, so durations, flags and bytes elsewhere stay as ffmpeg wrote them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { iterateBoxes } from '../../core/cmaf/boxes.ts';
import { parseFragment, parseInit } from '../../core/cmaf/fmp4.ts';
import { shiftFragmentTimes } from '../../transcoder-node/cmaf/timeline.ts';
import { buildLadderArgs } from '../../transcoder-node/ladder.ts';

const run = promisify(execFile);

describe('shiftFragmentTimes', () => {
  it('moves every fragment by the offset in its timescale and changes nothing else', async () => {
    const args = buildLadderArgs({
      input: [
        { format: 'lavfi', options: ['-t', '2'], url: 'testsrc2=size=160x90:rate=30' },
        { format: 'lavfi', options: ['-t', '2'], url: 'sine=sample_rate=48000' },
      ],
      videoSource: '0:v:0',
      audioSource: '1:a:0',
      ladder: [{ name: 'v', kind: 'video', width: 160, height: 90, videoBitrate: 200_000, codec: 'h264' }],
    }).map((a) => (a === 'pipe:3' ? 'pipe:1' : a));
    const { stdout } = await run('ffmpeg', args, { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 });
    const boxes = [...iterateBoxes(new Uint8Array(stdout))];
    const initBytes = new Uint8Array(Buffer.concat(boxes.filter((b) => b.type === 'ftyp' || b.type === 'moov').map((b) => b.bytes)));
    const init = parseInit(initBytes);
    const fragments = boxes.filter((b) => b.type === 'moof' || b.type === 'mdat').map((b) => b.bytes);
    const all = new Uint8Array(Buffer.concat(fragments));
    const shifted = shiftFragmentTimes(all, init, 12.345);
    expect(shifted.byteLength).toBe(all.byteLength);
    expect(shifted).not.toBe(all);
    const before = [...iterateBoxes(all)].filter((b) => b.type === 'moof');
    const after = [...iterateBoxes(shifted)].filter((b) => b.type === 'moof');
    expect(after).toHaveLength(before.length);
    const untimed = (x: unknown) => JSON.parse(JSON.stringify(x, (k, v) => (k === 'baseMediaDecodeTime' || k === 'startTime' ? 0 : v)));
    for (let i = 0; i < before.length; i++) {
      const a = parseFragment(before[i]!.bytes, init);
      const b = parseFragment(after[i]!.bytes, init);
      expect(b.baseMediaDecodeTime - a.baseMediaDecodeTime).toBe(Math.round(12.345 * a.timescale));
      expect(untimed(b)).toEqual(untimed(a));
    }
    // Only tfdt bytes differ (at most 8 per fragment).
    let diff = 0;
    for (let k = 0; k < all.byteLength; k++) if (all[k] !== shifted[k]) diff++;
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThanOrEqual(8 * before.length);
    expect(shiftFragmentTimes(all, init, 0)).toBe(all);
  }, 60_000);
});
