// The LL-HLS protocol core in one import: playlist text, what a playlist lists, and the
// blocking-reload decision table. Pure modules, no I/O, no Worker globals.
export * from './render.ts';
export * from './window.ts';
export * from './blocking.ts';
export * from './check.ts';
