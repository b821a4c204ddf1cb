/**
 * Reading the first bytes of a message, never more: a 50 MB message must cost the
 * scanner no more memory than a 512 KB one.
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** The first `max` bytes of `stream` (all of it if shorter); the stream is destroyed once enough was read. */
export async function readStreamHead(stream: Readable, max: number, signal?: AbortSignal): Promise<{ bytes: Buffer; truncated: boolean }> {
  const parts: Buffer[] = [];
  let total = 0;
  let truncated = false;
  try {
    for await (const chunk of stream) {
      signal?.throwIfAborted();
      const buffer = chunk as Buffer;
      if (total + buffer.length > max) {
        parts.push(buffer.subarray(0, max - total));
        total = max;
        truncated = true;
        break;
      }
      parts.push(buffer);
      total += buffer.length;
    }
  } finally {
    stream.destroy();
  }
  return { bytes: Buffer.concat(parts, total), truncated };
}

/**
 * The first `max` bytes of a file, streamed rather than read by its reported size: a
 * pipe (`mailgate spam check <(zcat msg.gz)`) reports 0 bytes.
 */
export async function readFileHead(path: string, max: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const handle = await open(path, 'r');
  // the stream closes the handle when it ends or is destroyed (autoClose)
  return readStreamHead(handle.createReadStream(), max);
}
