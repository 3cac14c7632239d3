// `edgelive`, the operator CLI over the admin API: streams and their restreams, clips and their
// MP4 exports, recordings, webhooks, rooms, signing keys, transcoder nodes, and playback tokens
// signed offline.
// `runCli` takes its I/O as arguments (CliIo); `main` wires it to the process.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { clipCommands } from './cli/clips.ts';
import { CliError, Ctx, GLOBAL_FLAGS, parseCommandLine, UsageError, type CliIo, type Command } from './cli/context.ts';
import { keyCommands } from './cli/keys.ts';
import { recordingCommands } from './cli/recordings.ts';
import { restreamCommands } from './cli/restreams.ts';
import { roomCommands } from './cli/rooms.ts';
import { streamCommands } from './cli/streams.ts';
import { webhookCommands } from './cli/webhooks.ts';

export type { CliIo } from './cli/context.ts';

export const COMMANDS: readonly Command[] = [
  ...streamCommands,
  ...restreamCommands,
  ...clipCommands,
  ...recordingCommands,
  ...webhookCommands,
  ...roomCommands,
  ...keyCommands,
];

const GROUP_WORDS: Record<string, string> = {
  streams: 'Streams',
  restreams: 'Restreams',
  clips: 'Clips',
  recordings: 'Recordings',
  webhooks: 'Webhooks',
  rooms: 'Rooms',
  keys: 'Signing keys',
  nodes: 'Transcoders',
  sign: 'Offline',
};

const OPTIONS_HELP = `Options
  --url URL        the Worker (default $EDGELIVE_URL or http://127.0.0.1:8787)
  --token TOKEN    admin token (default $EDGELIVE_ADMIN_TOKEN)
  --json           print the API's JSON as it is; errors as {"error":{"code","message"}} on stderr
  -h, --help       help (edgelive <group> --help: that group's commands)
  -v, --version    the CLI's version

Exit status: 0 done, 1 refused or failed (the API's error code is printed), 2 wrong usage.
`;

const HELP_WIDTH = 100;

/** Words wrapped to HELP_WIDTH, each line indented. */
function wrap(text: string, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, indent + line].join('\n') + '\n';
}

/** A command in the help: its name, arguments and flags, then what it does, indented. */
function commandHelp(c: Command): string {
  return wrap([c.name, c.synopsis].filter(Boolean).join(' '), '  ').replace(/\n(?=.)/g, '\n  ') + wrap(c.summary, '      ');
}

/** The help text: every group, or one. */
export function usage(group?: string): string {
  const groups = group ? [group] : [...new Set(COMMANDS.map((c) => c.group))];
  const sections = groups.map(
    (g) =>
      `${g}\n${COMMANDS.filter((c) => c.group === g)
        .map(commandHelp)
        .join('')}`,
  );
  return `edgelive — operate an edgelive deployment\n\nUsage: edgelive <command> [arguments] [options]\n\n${sections.join('\n')}\n${OPTIONS_HELP}`;
}

export const USAGE = usage();

/** The command the positionals name (two words, or `sign`), and the arguments after it. */
function findCommand(positionals: string[]): { command: Command; args: string[] } | null {
  for (const words of [2, 1]) {
    const name = positionals.slice(0, words).join(' ');
    const command = COMMANDS.find((c) => c.name === name);
    if (command && positionals.length >= words) return { command, args: positionals.slice(words) };
  }
  return null;
}

async function version(io: CliIo): Promise<string> {
  const pkg = JSON.parse(await io.readFile(fileURLToPath(new URL('../package.json', import.meta.url)))) as { version: string };
  return pkg.version;
}

/** Runs one command; the exit code is 0 on success, 1 when the API or a file says no, 2 on bad usage. */
export async function runCli(io: CliIo): Promise<number> {
  // Known before parsing, so even a flag parseArgs refuses is reported as JSON.
  const json = io.argv.includes('--json');
  const fail = (err: unknown): number => {
    const usageError = err instanceof UsageError;
    const e = err instanceof CliError ? err : new CliError(usageError ? 'usage' : 'error', (err as Error).message);
    if (json) {
      io.stderr(
        JSON.stringify({ error: { code: e.code, message: e.message, ...(e.status !== undefined ? { status: e.status } : {}) } }) + '\n',
      );
    } else if (usageError) {
      io.stderr(`error: ${e.message}\n(edgelive --help lists the commands)\n`);
    } else {
      io.stderr(`error: ${e.status !== undefined ? `${e.status} ${e.code}: ` : ''}${e.message}\n`);
    }
    return usageError ? 2 : 1;
  };
  try {
    let parsed: ReturnType<typeof parseCommandLine>;
    try {
      parsed = parseCommandLine(io.argv);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.version) {
      const v = await version(io);
      io.stdout(json ? JSON.stringify({ version: v }) + '\n' : `edgelive ${v}\n`);
      return 0;
    }
    const wantsHelp = values.help || positionals[0] === 'help';
    const words = positionals[0] === 'help' ? positionals.slice(1) : positionals;
    if (words.length === 0) {
      io.stdout(USAGE);
      return wantsHelp ? 0 : 2;
    }
    const found = findCommand(words);
    if (!found) {
      const group = GROUP_WORDS[words[0]!];
      if (group && (wantsHelp || words.length === 1)) {
        io.stdout(usage(group));
        return wantsHelp ? 0 : 2;
      }
      throw new UsageError(`unknown command: ${words.join(' ')}`);
    }
    const { command, args } = found;
    if (wantsHelp) {
      io.stdout(`Usage: edgelive ${commandHelp(command).trimStart()}\n${OPTIONS_HELP}`);
      return 0;
    }
    const allowed = new Set([...GLOBAL_FLAGS, ...(command.flags ?? [])]);
    const refused = Object.keys(values).filter((f) => !allowed.has(f as never));
    if (refused.length) throw new UsageError(`${command.name} does not take ${refused.map((f) => `--${f}`).join(', ')}`);
    const needs = command.args ?? [];
    if (args.length < needs.length) throw new UsageError(`${command.name} needs ${needs[args.length]}`);
    if (args.length > needs.length)
      throw new UsageError(
        `${command.name} takes ${needs.length || 'no'} argument${needs.length === 1 ? '' : 's'}; unexpected: ${args.slice(needs.length).join(' ')}`,
      );
    await command.run(new Ctx(io, values, args));
    return 0;
  } catch (err) {
    return fail(err);
  }
}

/** The process entry point (bin/edgelive.mjs calls it). */
export async function main(argv = process.argv.slice(2)): Promise<number> {
  return runCli({
    argv,
    env: process.env,
    fetch: globalThis.fetch,
    WebSocket: globalThis.WebSocket,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    stderrIsTTY: process.stderr.isTTY === true,
    readFile: (p) => readFile(p, 'utf8'),
    writeSecretFile: (p, t) => writeFile(p, t, { mode: 0o600, flag: 'wx' }),
    writeFile: (p, b) => writeFile(p, b, { flag: 'wx' }),
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  });
}
