// What the test process still holds after a full garbage collection: the figure a memory bound is
// asserted on (heap objects plus Buffer memory), so garbage not yet collected never counts.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A context created after the flag is set gets V8's gc(); the test worker was not started with it.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export const MiB = 1024 * 1024;

/** Live JavaScript heap and ArrayBuffer (Buffer) bytes after collecting everything collectable. */
export function retainedMemory(): { heap: number; buffers: number } {
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return { heap: heapUsed, buffers: arrayBuffers };
}

/** Heap plus Buffer bytes still reachable. */
export function retainedBytes(): number {
  const { heap, buffers } = retainedMemory();
  return heap + buffers;
}
