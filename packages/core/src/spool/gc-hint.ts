import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Socket chunks are Buffers whose memory lives outside the V8 heap and is freed only
 * when their small JS wrappers are collected. Streaming a large body allocates almost
 * nothing else, so no collection runs and tens of MB of dead chunks pile up before
 * V8's external-memory limit forces one. A young-generation collection every few MB
 * of body (about a millisecond) keeps a 50 MB message costing a few MB, as promised.
 */
type Collect = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let collect: Collect | null | undefined;

function collector(): Collect | null {
  if (collect !== undefined) return collect;
  try {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  } catch {
    collect = null;
  }
  return collect;
}

/** Bytes of body between two collection hints. */
export const GC_HINT_INTERVAL = 8 * 1024 * 1024;

/** Ask V8 for a quick young-generation collection. */
export function collectDeadChunks(): void {
  collector()?.({ type: 'minor' });
}
