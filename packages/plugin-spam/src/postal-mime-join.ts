/**
 * postal-mime 4 joins the lines of a 7bit/8bit part (its PassThroughDecoder: every line
 * and every "\n" a separate piece) with `new Blob(pieces).arrayBuffer()`. Built for
 * browsers; on Node 20 that costs 9.5 ms for a 1,280-line part where Buffer.concat costs
 * 0.6 ms, more than half of what scanning a 100 KB message costs (bench/README.md, "Spam
 * mode"). Its finalize() is replaced by one that concatenates: the same bytes, the same
 * Promise<ArrayBuffer>. The decoder is internal to postal-mime: it is looked for next to
 * the package's ES module entry, and if it is not there (a later layout) or does not look
 * as expected, nothing is changed and postal-mime runs as shipped.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface PassThroughDecoder {
  chunks?: unknown;
  update?: unknown;
  finalize?: (this: PassThroughDecoder) => Promise<ArrayBuffer>;
}

/** Whether postal-mime's line joining was replaced (tests check it, to notice a postal-mime update). */
export const postalMimeJoinReplaced: boolean = await replaceJoin();

async function replaceJoin(): Promise<boolean> {
  try {
    const root = dirname(createRequire(import.meta.url).resolve('postal-mime/package.json'));
    const url = pathToFileURL(join(root, 'dist', 'esm', 'pass-through-decoder.js')).href;
    const decoder = ((await import(url)) as { default?: { prototype?: PassThroughDecoder } }).default?.prototype;
    if (!decoder || typeof decoder.finalize !== 'function' || typeof decoder.update !== 'function') return false;
    const shipped = decoder.finalize;
    decoder.finalize = function (this: PassThroughDecoder): Promise<ArrayBuffer> {
      const chunks = this.chunks;
      if (!Array.isArray(chunks)) return shipped.call(this);
      const pieces: Buffer[] = [];
      for (const chunk of chunks) {
        if (typeof chunk === 'string') pieces.push(Buffer.from(chunk, 'utf8'));
        else if (chunk instanceof Uint8Array) pieces.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        else return shipped.call(this);
      }
      const joined = Buffer.concat(pieces);
      return Promise.resolve(joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.length) as ArrayBuffer);
    };
    return true;
  } catch {
    return false;
  }
}
