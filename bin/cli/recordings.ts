// `edgelive recordings …`: every broadcast of a stream is a recording (a VOD playlist over the
// live objects); list them and show one.
import { fields, pageQuery, table, type Command } from './context.ts';

interface Recording {
  id: string;
  streamId: string;
  status: string;
  startedAt: string;
  endedAt: string | null;
  duration: number | null;
  discontinuities: number;
  expiresAt: string | null;
  playback: { hls: string } | null;
}

export const recordingCommands: Command[] = [
  {
    name: 'recordings list',
    group: 'Recordings',
    synopsis: '<stream> [--limit N]',
    summary: "a stream's recordings, newest first (also those of a deleted stream, until they expire)",
    args: ['a stream id'],
    flags: ['limit'],
    async run(c) {
      const r = await c.call<{ recordings: Recording[] }>('GET', `/api/streams/${c.arg(0)}/recordings${pageQuery(c.v)}`);
      c.print(r, () =>
        table(
          ['ID', 'STATUS', 'STARTED', 'DURATION', 'PLAY'],
          r.recordings.map((x) => [x.id, x.status, x.startedAt, x.duration === null ? '-' : `${x.duration} s`, x.playback?.hls ?? '-']),
        ),
      );
    },
  },
  {
    name: 'recordings show',
    group: 'Recordings',
    synopsis: '<recording>',
    summary: 'a recording: when, how long, its VOD playlist',
    args: ['a recording id'],
    async run(c) {
      const r = await c.call<Recording>('GET', `/api/recordings/${c.arg(0)}`);
      c.print(
        r,
        () =>
          `recording ${r.id}\n${fields([
            ['stream', r.streamId],
            ['status', r.status],
            ['started', r.startedAt],
            ['ended', r.endedAt],
            ['duration', r.duration === null ? null : `${r.duration} s`],
            ['reconnects', r.discontinuities],
            ['expires', r.expiresAt],
            ['play', r.playback?.hls],
          ])}`,
      );
    },
  },
];
