// Ambient types of the untyped test-only parser packages. The Worker's Env and the
// `cloudflare:workers` main module are generated into worker-configuration.d.ts (`npm run types`).
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
