// buildLadderArgs: part timing computed from PART-TARGET, frame rate and AAC framing (PART-08,
// PART-09), one decode split into every rung, aligned keyframes, one fMP4 pipe per rung, and
// every option accepted by the ffmpeg 5.1 on this machine.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LADDER, audioPartPlan, buildLadderArgs, planLadder, rungFd, videoPartPlan } from '../../transcoder-node/ladder.ts';
import type { LadderRung } from '../../transcoder-node/ladder.ts';

const run = promisify(execFile);

/** The argv of each output: the tokens after the previous output URL up to and including `pipe:N`. */
function outputs(args: string[]): string[][] {
  const out: string[][] = [];
  let start = args.indexOf('-filter_complex') + 2;
  args.forEach((a, i) => {
    if (/^pipe:([3-9]|[1-9]\d+)$/.test(a)) {
      out.push(args.slice(start, i + 1));
      start = i + 1;
    }
  });
  return out;
}

function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

describe('part plans', () => {
  it('PART-08/PART-09: video parts are the most whole frames that fit in PART-TARGET, frag_duration half a frame short', () => {
    expect(videoPartPlan(0.2, 30)).toEqual({ frames: 6, partDuration: 0.2, fragDurationUs: 183333 });
    expect(videoPartPlan(0.2, 25)).toEqual({ frames: 5, partDuration: 0.2, fragDurationUs: 180000 });
    expect(videoPartPlan(0.25, 30)).toMatchObject({ frames: 7, fragDurationUs: 216667 });
    expect(videoPartPlan(0.5, 60)).toMatchObject({ frames: 30, fragDurationUs: 491667 });
    // The fragment is flushed when dts − first dts ≥ frag_duration: N−1 frames are below it, N frames reach it.
    for (const [pt, fps] of [
      [0.2, 30],
      [0.2, 25],
      [0.3, 24],
      [0.5, 60],
      [1, 30],
    ] as const) {
      const p = videoPartPlan(pt, fps);
      expect((p.frames - 1) / fps).toBeLessThan(p.fragDurationUs / 1e6);
      expect(p.frames / fps).toBeGreaterThanOrEqual(p.fragDurationUs / 1e6);
      expect(p.partDuration).toBeLessThanOrEqual(pt + 1e-12);
      expect(p.partDuration).toBeGreaterThanOrEqual(0.85 * pt);
    }
  });

  it('PART-09: refuses a PART-TARGET that whole frames cannot fill to 85 %', () => {
    expect(() => videoPartPlan(0.25, 10)).toThrow(/PART-09/); // 2 frames = 0.2 s = 80 %
    expect(() => videoPartPlan(0.02, 30)).toThrow(/shorter than one frame/);
  });

  it('audio parts are whole 1024-sample AAC frames at 48 kHz: 9 frames = 192 ms for 200 ms', () => {
    expect(audioPartPlan(0.2)).toEqual({ frames: 9, partDuration: 0.192, fragDurationUs: 181333 });
    expect(audioPartPlan(0.5)).toMatchObject({ frames: 23, fragDurationUs: 480000 });
  });

  it('the GOP is exactly one segment target', () => {
    expect(planLadder({ ladder: DEFAULT_LADDER }).gop).toBe(30);
    expect(planLadder({ ladder: DEFAULT_LADDER, segmentTarget: 2, fps: 25 }).gop).toBe(50);
    expect(() => planLadder({ ladder: DEFAULT_LADDER, partTarget: 2, segmentTarget: 1 })).toThrow(RangeError);
  });
});

describe('the default ladder from an FLV pipe', () => {
  const args = buildLadderArgs({ input: 'pipe:0', inputFormat: 'flv', ladder: DEFAULT_LADDER });
  const outs = outputs(args);

  it('reads one FLV input from stdin and decodes it once: one fps filter split into every video size', () => {
    expect(args.filter((a) => a === '-i')).toHaveLength(1);
    expect(args.slice(args.indexOf('-f'), args.indexOf('-i') + 2)).toEqual([
      '-f',
      'flv',
      '-analyzeduration',
      '1000000',
      '-probesize',
      '1000000',
      '-i',
      'pipe:0',
    ]);
    expect(args).not.toContain('-nostdin');
    const graph = flagValue(args, '-filter_complex')!.split(';');
    expect(graph[0]).toBe('[0:v:0]fps=30:start_time=0,split=3[vs0][vs1][vs2]');
    expect(graph.slice(1, 4).map((f) => /scale=w=(\d+):h=(\d+)/.exec(f)!.slice(1).join('x'))).toEqual(['1280x720', '854x480', '640x360']);
    expect(graph[4]).toBe('[0:a:0]aresample=async=1:first_pts=0,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a0]');
  });

  it('one fMP4 output per rung on pipe:3, pipe:4, … in ladder order, video-only or audio-only', () => {
    expect(outs.map((o) => o.at(-1))).toEqual(DEFAULT_LADDER.map((_, i) => `pipe:${rungFd(i)}`));
    for (const [i, rung] of DEFAULT_LADDER.entries()) {
      const o = outs[i]!;
      expect(flagValue(o, '-f')).toBe('mp4');
      expect(flagValue(o, '-movflags')).toBe('+frag_keyframe+empty_moov+default_base_moof+skip_trailer');
      expect(flagValue(o, '-flush_packets')).toBe('1');
      expect(o).toEqual(expect.arrayContaining(['-sn', '-dn', rung.kind === 'video' ? '-an' : '-vn']));
      expect(flagValue(o, '-frag_duration')).toBe(rung.kind === 'video' ? '183333' : '181333');
    }
  });

  it('H.264 rungs: libx264 veryfast/zerolatency High, no B-frames, keyframes every second on every rung, VBV', () => {
    for (const [i, rung] of DEFAULT_LADDER.entries()) {
      if (rung.kind !== 'video') continue;
      const o = outs[i]!;
      expect(flagValue(o, '-map')).toBe(`[v${i}]`);
      expect([flagValue(o, '-c:v'), flagValue(o, '-preset'), flagValue(o, '-tune'), flagValue(o, '-profile:v')]).toEqual([
        'libx264',
        'veryfast',
        'zerolatency',
        'high',
      ]);
      expect([flagValue(o, '-g'), flagValue(o, '-keyint_min'), flagValue(o, '-sc_threshold'), flagValue(o, '-bf')]).toEqual([
        '30',
        '30',
        '0',
        '0',
      ]);
      expect(flagValue(o, '-force_key_frames')).toBe('expr:gte(t,n_forced*1)');
      const maxrate = String(Math.round(rung.videoBitrate * 1.2));
      expect([flagValue(o, '-b:v'), flagValue(o, '-maxrate'), flagValue(o, '-bufsize')]).toEqual([
        String(rung.videoBitrate),
        maxrate,
        maxrate,
      ]);
    }
  });

  it('the audio rung: AAC at 48 kHz, its bitrate and channels', () => {
    const o = outs[3]!;
    expect([flagValue(o, '-map'), flagValue(o, '-c:a'), flagValue(o, '-b:a'), flagValue(o, '-ar'), flagValue(o, '-ac')]).toEqual([
      '[a0]',
      'aac',
      '128000',
      '48000',
      '2',
    ]);
  });

  it('lavfi inputs and other stream sources; -nostdin when nothing reads stdin; progress on request', () => {
    const a = buildLadderArgs({
      input: [
        { format: 'lavfi', options: ['-t', '4'], url: 'testsrc2=size=640x360:rate=30' },
        { format: 'lavfi', options: ['-t', '4'], url: 'sine' },
      ],
      audioSource: '1:a:0',
      ladder: [{ name: 'mono', kind: 'audio', audioBitrate: 64_000, channels: 1 }],
      progress: true,
    });
    expect(a.slice(0, 10)).toEqual([
      '-hide_banner',
      '-loglevel',
      'warning',
      '-nostats',
      '-nostdin',
      '-progress',
      'pipe:2',
      '-stats_period',
      '1',
      '-f',
    ]);
    expect(a.filter((x) => x === '-i')).toHaveLength(2);
    expect(flagValue(a, '-filter_complex')).toMatch(/^\[1:a:0\]aresample=.*channel_layouts=mono\[a0\]$/);
    expect(outputs(a).map((o) => o.at(-1))).toEqual(['pipe:3']);
  });

  it('an H.265 rung uses libx265 with forced IDRs, no scene cuts or B-frames, tagged hvc1', () => {
    const h = buildLadderArgs({ ladder: [{ name: 'hevc', kind: 'video', width: 640, height: 360, videoBitrate: 500_000, codec: 'h265' }] });
    expect([flagValue(h, '-c:v'), flagValue(h, '-forced-idr'), flagValue(h, '-tag:v')]).toEqual(['libx265', '1', 'hvc1']);
    expect(flagValue(h, '-x265-params')).toBe('scenecut=0:bframes=0:open-gop=0:log-level=error');
  });
});

describe('ffmpeg 5.1 on this machine', () => {
  const hevcLadder: LadderRung[] = [
    ...DEFAULT_LADDER,
    { name: 'hevc', kind: 'video', width: 320, height: 180, videoBitrate: 300_000, codec: 'h265' },
  ];

  it('knows every option and movflag we pass', async () => {
    const { stdout: help } = await run('ffmpeg', ['-hide_banner', '-h', 'full'], { maxBuffer: 64 * 1024 * 1024 });
    const args = buildLadderArgs({ ladder: hevcLadder, progress: true });
    const options = new Set(args.filter((a) => /^-[a-z]/.test(a) && a !== '-i').map((a) => a.slice(1).split(':')[0]!));
    const known = (name: string) => new RegExp(`^\\s*-${name.replace(/[-]/g, '\\-')}\\s`, 'm').test(help);
    for (const name of options) expect(known(name) || (name.startsWith('no') && known(name.slice(2))), `-${name}`).toBe(true);
    for (const flag of flagValue(args, '-movflags')!.split('+').filter(Boolean)) {
      expect(help, `movflags ${flag}`).toMatch(new RegExp(`^\\s+${flag}\\s+E`, 'm'));
    }
  });

  it('accepts the whole argv for the default ladder plus an H.265 rung and runs it cleanly', async () => {
    const args = buildLadderArgs({
      input: [
        { format: 'lavfi', options: ['-t', '0.4'], url: 'testsrc2=size=1280x720:rate=30' },
        { format: 'lavfi', options: ['-t', '0.4'], url: 'sine=sample_rate=44100' },
      ],
      audioSource: '1:a:0',
      ladder: hevcLadder,
    });
    // Outputs go to /dev/null here: this checks that ffmpeg takes the options, not the media.
    const argv = args.map((a) => (/^pipe:[3-9]$/.test(a) ? '/dev/null' : a));
    const { stderr } = await run('ffmpeg', ['-y', ...argv]);
    expect(stderr).toBe('');
  });
});
