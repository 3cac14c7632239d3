// Ambient types: the Worker's Env and main module for `cloudflare:workers` in tests, and the
// untyped test-only parser package.
type WorkerEnv = import('./workers/env.ts').Env;

declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import('./workers/index.ts');
    durableNamespaces: 'StreamState' | 'Room' | 'RoomShard';
  }
  interface Env extends WorkerEnv {}
}

declare module 'm3u8-parser' {
  export class Parser {
    push(chunk: string): void;
    end(): void;
    manifest: Record<string, unknown>;
  }
}

declare module 'mux.js' {
  const muxjs: {
    mp4: {
      probe: {
        timescale(init: Uint8Array): Record<number, number>;
        startTime(timescales: Record<number, number>, fragment: Uint8Array): number;
        [k: string]: unknown;
      };
      [k: string]: unknown;
    };
    [k: string]: unknown;
  };
  export default muxjs;
}
