import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { MAX_HEADER_SECTION } from '../smtp/header-size.js';
import type { Header } from '../smtp/headers.js';
import { findHeaderEnd, formatHeader, parseHeaderBlock } from '../smtp/headers.js';
import { collectDeadChunks, GC_HINT_INTERVAL } from './gc-hint.js';

/** Where the spooled body lives: small bodies in memory, larger ones in a spool file. */
export type MessageBody =
  | { kind: 'memory'; chunks: Buffer[] }
  | { kind: 'file'; path: string };

/** How many bytes of the body head are read to parse headers lazily: the whole header section, which the engine bounds. */
const HEADER_SCAN_LIMIT = MAX_HEADER_SECTION;

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
  /** Byte ranges [start, end) of the received message left out on output (removed header fields), sorted. */
  private removed: Array<[number, number]> = [];
  /** Starts of the ranges in `removed`: a sender picks how many fields match, so no linear search per field. */
  private readonly removedStarts = new Set<number>();
  private removedBytes = 0;
  /**
   * The received message starts with a space or tab: without a separator its first line
   * would continue the last header we prepend (our Received:), so text the client chose
   * would read as part of our trace header. Then an empty line follows the added headers
   * and the received message is all body, as Postfix's cleanup does.
   */
  private readonly separator: string;

  constructor(
    private readonly body: MessageBody,
    /** Size of the body as received (after dot-unstuffing), in bytes. */
    readonly bodySize: number,
    options: { bodyStartsWithWhitespace?: boolean } = {},
  ) {
    this.separator = options.bodyStartsWithWhitespace ? '\r\n' : '';
  }

  /** Size of the whole message as it will be stored: prepended headers plus body. */
  get size(): number {
    let n = this.bodySize - this.removedBytes;
    for (const h of this.prepended) n += Buffer.byteLength(h);
    if (this.prepended.length > 0) n += this.separator.length;
    return n;
  }

  /** What goes before the received message: the added headers, and the separator when it needs one. */
  private addedBlock(): string[] {
    return this.prepended.length > 0 && this.separator ? [...this.prepended, this.separator] : this.prepended;
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

  /**
   * Leave out the header fields of the message as received that `match` (name as
   * written, unfolded value), as a spam filter drops the X-Spam-* headers a sender put
   * there before adding its own (SpamAssassin does). The stored body is not rewritten:
   * `stream()` skips the fields. Only the first 256 KiB are looked at; headers added with
   * prependHeader are not affected. Resolves to how many fields were removed.
   */
  async removeHeaders(match: (name: string, value: string) => boolean): Promise<number> {
    // Behind the separator the received message is all body: it has no header fields to remove.
    if (this.separator) return 0;
    const head = await this.readHead(HEADER_SCAN_LIMIT);
    // A header block longer than the window: its last field seen may be cut short; keep it.
    const whole = findHeaderEnd(head) >= 0 || head.length < HEADER_SCAN_LIMIT;
    const fields = parseHeaderBlock(head).headers;
    let count = 0;
    fields.forEach((field, i) => {
      // parseHeaderBlock gives raw as a slice of `head` (a string only for built headers)
      if ((!whole && i === fields.length - 1) || typeof field.raw === 'string' || !match(field.name, field.value)) return;
      const start = field.raw.byteOffset - head.byteOffset;
      if (this.removedStarts.has(start)) return;
      this.removedStarts.add(start);
      this.removed.push([start, start + field.raw.length]);
      this.removedBytes += field.raw.length;
      count++;
    });
    if (count > 0) {
      // A new array: a stream() already running keeps cutting the ranges it started with.
      this.removed = [...this.removed].sort((a, b) => a[0] - b[0]);
      this.parsedHeaders = undefined;
    }
    return count;
  }

  /** Raw prepended header lines, top first, each ending in CRLF. */
  get addedHeaders(): readonly string[] {
    return this.prepended;
  }

  /** The header section, parsed on first use (reads at most the first 256 KiB of the body). */
  async headers(): Promise<readonly Header[]> {
    if (this.parsedHeaders) return this.parsedHeaders;
    // Behind the separator the received message is all body: only the added headers are headers.
    const raw = this.separator ? Buffer.alloc(0) : await this.readHead(HEADER_SCAN_LIMIT);
    const head = this.removed.length === 0 ? raw : Buffer.concat([...skipRanges([raw], this.removed)]);
    const prefix = Buffer.from(this.addedBlock().join(''));
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
    const head = options.includeAdded === false ? [] : this.addedBlock().map((h) => Buffer.from(h));
    const removed = this.removed;
    if (this.body.kind === 'memory') {
      const body = removed.length === 0 ? this.body.chunks : [...skipRanges(this.body.chunks, removed)];
      return Readable.from([...head, ...body], { objectMode: false });
    }
    const path = this.body.path;
    return Readable.from(
      (async function* () {
        yield* head;
        const file = createReadStream(path, { highWaterMark: 64 * 1024 });
        // removed ranges lie in the first 256 KiB; past them the file streams as usual
        const source = removed.length === 0 ? file : skipRangesAsync(file, removed);
        // Read chunks die as fast as socket chunks do: same collection hint (gc-hint.ts).
        let read = 0;
        let nextCollect = GC_HINT_INTERVAL;
        for await (const chunk of source) {
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

/** `chunks` (consecutive bytes from offset 0) without the byte ranges [start, end) of `ranges` (sorted, disjoint). */
function* skipRanges(chunks: Iterable<Buffer>, ranges: ReadonlyArray<readonly [number, number]>): Generator<Buffer> {
  const cut = new RangeCutter(ranges);
  for (const chunk of chunks) yield* cut.next(chunk);
}

async function* skipRangesAsync(chunks: AsyncIterable<unknown>, ranges: ReadonlyArray<readonly [number, number]>): AsyncGenerator<Buffer> {
  const cut = new RangeCutter(ranges);
  for await (const chunk of chunks) yield* cut.next(chunk as Buffer);
}

/** Cuts ranges out of a byte stream chunk by chunk; a range may span chunks. */
class RangeCutter {
  private pos = 0;
  private r = 0;

  constructor(private readonly ranges: ReadonlyArray<readonly [number, number]>) {}

  *next(chunk: Buffer): Generator<Buffer> {
    const end = chunk.length;
    let at = 0;
    while (this.r < this.ranges.length && at < end) {
      const [a, b] = this.ranges[this.r]!;
      const from = a - this.pos;
      const to = b - this.pos;
      if (from >= end) break;
      if (from > at) yield chunk.subarray(at, from);
      if (to > end) {
        at = end; // the range goes on in the next chunk
        break;
      }
      at = Math.max(at, to);
      this.r++;
    }
    if (at < end) yield at === 0 ? chunk : chunk.subarray(at);
    this.pos += end;
  }
}
