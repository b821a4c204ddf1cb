import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Header } from '../smtp/headers.js';
import { parseHeaderBlock } from '../smtp/headers.js';
import { formatHeader } from '../smtp/headers.js';
import { collectDeadChunks, GC_HINT_INTERVAL } from './gc-hint.js';

/** Where the spooled body lives: small bodies in memory, larger ones in a spool file. */
export type MessageBody =
  | { kind: 'memory'; chunks: Buffer[] }
  | { kind: 'file'; path: string };

/** How many bytes of the body head are read to parse headers lazily. */
const HEADER_SCAN_LIMIT = 256 * 1024;

/**
 * A received message: the spooled body plus headers prepended by the gateway
 * (the Received: trace header, plugins' tag headers). The body is never loaded
 * whole into memory; `stream()` may be called any number of times and each call
 * returns an independent reader (unlike Haraka's single-consumer stream).
 */
export class Message {
  /** Headers added by the gateway and plugins, in the order they appear on output (top first). */
  private readonly prepended: string[] = [];
  private parsedHeaders: Header[] | undefined;

  constructor(
    private readonly body: MessageBody,
    /** Size of the body as received (after dot-unstuffing), in bytes. */
    readonly bodySize: number,
  ) {}

  /** Size of the whole message as it will be stored: prepended headers plus body. */
  get size(): number {
    let n = this.bodySize;
    for (const h of this.prepended) n += Buffer.byteLength(h);
    return n;
  }

  /** Path of the spool file, if the body spilled to disk (lets storage plugins link or copy it). */
  get spoolPath(): string | undefined {
    return this.body.kind === 'file' ? this.body.path : undefined;
  }

  /** Add a header at the top of the message. Throws TypeError on CR/LF in name or value (header injection). */
  prependHeader(name: string, value: string): void {
    this.prepended.unshift(formatHeader(name, value));
    this.parsedHeaders = undefined;
  }

  /**
   * Add a header whose value the gateway already folded (CRLF + tab), such as its
   * Received: line. Only for values built by trusted code: no injection check.
   */
  prependRawHeader(name: string, foldedValue: string): void {
    this.prepended.unshift(`${name}: ${foldedValue}\r\n`);
    this.parsedHeaders = undefined;
  }

  /** Raw prepended header lines, top first, each ending in CRLF. */
  get addedHeaders(): readonly string[] {
    return this.prepended;
  }

  /** The header section, parsed on first use (reads at most the first 256 KiB of the body). */
  async headers(): Promise<readonly Header[]> {
    if (this.parsedHeaders) return this.parsedHeaders;
    const head = await this.readHead(HEADER_SCAN_LIMIT);
    const prefix = Buffer.from(this.prepended.join(''));
    this.parsedHeaders = parseHeaderBlock(Buffer.concat([prefix, head])).headers;
    return this.parsedHeaders;
  }

  /** First value of a header, case-insensitive. */
  async header(name: string): Promise<string | undefined> {
    const lower = name.toLowerCase();
    return (await this.headers()).find((h) => h.name.toLowerCase() === lower)?.value;
  }

  /** A new, independent stream of the whole message (prepended headers, then body). */
  stream(options: { includeAdded?: boolean } = {}): Readable {
    const head = options.includeAdded === false ? [] : this.prepended.map((h) => Buffer.from(h));
    if (this.body.kind === 'memory') return Readable.from([...head, ...this.body.chunks], { objectMode: false });
    const path = this.body.path;
    return Readable.from(
      (async function* () {
        yield* head;
        // Read chunks die as fast as socket chunks do: same collection hint (gc-hint.ts).
        let read = 0;
        let nextCollect = GC_HINT_INTERVAL;
        for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
          read += (chunk as Buffer).length;
          if (read >= nextCollect) {
            nextCollect = read + GC_HINT_INTERVAL;
            collectDeadChunks();
          }
          yield chunk as Buffer;
        }
      })(),
      { objectMode: false },
    );
  }

  /** The whole message as one Buffer. For tests and small messages only: it defeats streaming. */
  async toBuffer(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.stream()) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  private async readHead(limit: number): Promise<Buffer> {
    if (this.body.kind === 'memory') {
      const all = this.body.chunks.length === 1 ? this.body.chunks[0]! : Buffer.concat(this.body.chunks);
      return all.subarray(0, limit);
    }
    const parts: Buffer[] = [];
    let total = 0;
    for await (const chunk of createReadStream(this.body.path, { end: limit - 1 })) {
      parts.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= limit) break;
    }
    return Buffer.concat(parts);
  }
}
