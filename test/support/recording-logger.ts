// A Logger for tests that keeps its lines in memory (each line flat: level, msg and the fields) and
// prints nothing, so a test can assert what the code under test logged.
import type { Logger } from '../../transcoder-node/log.ts';

export type LogLine = { level: string; msg: string } & Record<string, unknown>;

/** A Logger that keeps its lines in memory (and prints nothing). */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (base: Record<string, unknown>): Logger => {
    const write = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
      lines.push({ ...base, ...fields, level, msg });
    };
    return {
      debug: write('debug'),
      info: write('info'),
      warn: write('warn'),
      error: write('error'),
      child: (f) => make({ ...base, ...f }),
    };
  };
  return Object.assign(make({}), { lines });
}
