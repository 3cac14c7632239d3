// hls.js's playlist loader for the watch page's start: until the first frame, each plain load of a
// main media playlist is handed to hls.js with its EXT-X-START moved back to the keyframe before
// it (core/player/start-point.ts), so hls.js (and its audio, which follows the main start) begins
// on an independent part: one video part before the first frame instead of a chain of them.
import Hls, { type LoaderCallbacks, type LoaderConfiguration, type PlaylistLoaderConstructor, type PlaylistLoaderContext } from 'hls.js';
import { startOnIndependentPart } from '../../../core/player/start-point.ts';

export function keyframeStartLoader(starting: () => boolean): PlaylistLoaderConstructor {
  const Base = Hls.DefaultConfig.loader as unknown as new (
    ...args: unknown[]
  ) => {
    load(context: PlaylistLoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<PlaylistLoaderContext>): void;
  };
  return class KeyframeStartLoader extends Base {
    override load(context: PlaylistLoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<PlaylistLoaderContext>): void {
      // Only a plain load (no blocking-reload directives): that is the one hls.js starts from.
      if (context.type !== 'level' || context.deliveryDirectives || !starting()) return super.load(context, config, callbacks);
      super.load(context, config, {
        ...callbacks,
        onSuccess: (response, stats, ctx, details) => {
          if (typeof response.data === 'string') response.data = startOnIndependentPart(response.data);
          callbacks.onSuccess(response, stats, ctx, details);
        },
      });
    }
  } as unknown as PlaylistLoaderConstructor;
}
