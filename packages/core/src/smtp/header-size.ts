/**
 * The header section of a message (up to its first empty line) must end within the
 * part of the message plugins parse (`Message.headers()`, `removeHeaders()`: the first
 * MAX_HEADER_SECTION bytes). A field past it would reach the mailbox unseen by every
 * plugin: a forged `Authentication-Results:` or `X-Spam-Flag:` a spam filter could not
 * remove. Exim refuses such mail too (header_maxsize), Sendmail at 32 KB.
 *
 * Fed the body chunk by chunk as it arrives; looks only at the first bytes.
 */
export const MAX_HEADER_SECTION = 256 * 1024;

const BLANK_LINE = Buffer.from('\r\n\r\n');

export class HeaderSizeCheck {
  /** 'open' while the end of the header section was not seen yet. */
  state: 'open' | 'ended' | 'too-big' = 'open';
  private seen = 0;
  /** The last bytes seen (a CRLF before the start: a body that begins with CRLF has an empty header section). */
  private tail: Buffer = Buffer.from('\r\n');

  constructor(private readonly limit = MAX_HEADER_SECTION) {}

  push(chunk: Buffer): void {
    if (this.state !== 'open' || chunk.length === 0) return;
    // A message that starts with white space is all body (Message puts an empty line before it).
    if (this.seen === 0 && (chunk[0] === 0x20 || chunk[0] === 0x09)) {
      this.state = 'ended';
      return;
    }
    const window = chunk.subarray(0, Math.max(0, this.limit - this.seen));
    // The empty line may straddle the previous chunk and this one: look at the seam, then
    // at this chunk alone (no copy of the chunk: this runs for every message).
    const seam = Buffer.concat([this.tail, window.subarray(0, 3)]);
    if (seam.indexOf(BLANK_LINE) >= 0 || window.indexOf(BLANK_LINE) >= 0) {
      this.state = 'ended';
      return;
    }
    this.seen += chunk.length;
    // At exactly the limit without the empty line the last field may be cut short where
    // removeHeaders() reads, so it cannot be relied on: refused too.
    if (this.seen >= this.limit) this.state = 'too-big';
    else this.tail = (window.length >= 3 ? window : seam).subarray(-3);
  }

  /** At the end of the body: a message without an empty line is all header, and may not be longer than the limit either. */
  get tooBig(): boolean {
    return this.state === 'too-big';
  }
}
