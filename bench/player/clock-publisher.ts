// The benchmark's streamer: ffmpeg's test pattern with the capture time burnt in twice — as text
// for people, and as a 27-bit barcode (milliseconds of the UTC day) that a page reads back from
// the frame it is showing. The time is the wall clock when the frame left the pattern generator
// (setpts RTCTIME), not a start time plus media time, so a publisher or transcoder that falls
// behind real time shows up as latency instead of hiding in the timestamps.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';

/** Where the barcode sits in the 640x360 source picture (the page scales for smaller renditions). */
export const BARCODE = { x: 56, y: 304, cell: 16, height: 24, cells: 32, bits: 27, width: 640, heightPx: 360 } as const;

export function startClockPublisher(o: { rtmpUrl: string; logDir?: string; fps?: number }): ChildProcess {
  const fps = o.fps ?? 30;
  const { x, y, cell, height, bits } = BARCODE;
  // Cell 0 is white and cell 1 black (a marker the reader checks), then bit k of the ms of the day
  // in cell k + 2; luma in video range (16..235).
  const geq =
    `geq=lum='st(0,floor(X/${cell}));st(1,mod(floor(T*1000),86400000));` +
    `if(eq(ld(0),0),235,if(eq(ld(0),1),16,if(lt(ld(0),${bits + 2}),16+219*mod(floor(ld(1)/pow(2,ld(0)-2)),2),16)))':cb=128:cr=128`;
  const clockText = `drawtext=text='%{pts\\:gmtime\\:0\\:%H\\\\\\:%M\\\\\\:%S}.%{eif\\:mod(t*1000\\,1000)\\:d\\:3} UTC':x=24:y=24:fontsize=30:fontcolor=white:box=1:boxcolor=black@0.6`;
  const graph =
    `[0:v]setpts='RTCTIME/(TB*1000000)',format=yuv420p,split[a][b];` +
    `[b]crop=${BARCODE.cells * cell}:${height}:0:0,${geq}[bar];` +
    `[a][bar]overlay=${x}:${y},${clockText},setpts=PTS-STARTPTS[v]`;
  const args = [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    '-re',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=640x360:rate=${fps}`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=1000:sample_rate=48000',
    '-filter_complex',
    graph,
    '-map',
    '[v]',
    '-map',
    '1:a',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-g',
    String(fps),
    '-b:v',
    '1500k',
    '-c:a',
    'aac',
    '-b:a',
    '96k',
    '-ar',
    '48000',
    '-f',
    'flv',
    o.rtmpUrl,
  ];
  const out = o.logDir ? openSync(join(o.logDir, 'clock-publisher.log'), 'a') : 'ignore';
  return spawn('ffmpeg', args, { stdio: ['ignore', out, out] });
}
