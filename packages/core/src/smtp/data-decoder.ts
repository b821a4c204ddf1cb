/**
 * Streaming DATA decoder (RFC 5321 §4.1.1.4, §4.5.2) and the BDAT bare line
 * ending scanner: the anti-SMTP-smuggling core.
 *
 * Rules
 * -----
 * - Data ends ONLY at <CRLF>.<CRLF>, where the first CRLF ends the last body line.
 *   The start of data counts as "after CRLF", so `.\r\n` right after the 354
 *   reply is an empty message. The body keeps the CRLF of its last line; the
 *   terminating `.\r\n` is not part of it.
 * - Dot-unstuffing: a line that starts with `.` loses that dot.
 * - A bare LF (LF not preceded by CR) or bare CR (CR not followed by LF) is never
 *   a line ending for the end-of-data marker, whatever the policy. None of
 *   `\n.\n`, `\n.\r\n`, `\r\n.\n`, `\r.\r`, `\r\n.\r`, `\r.\r\n`, … ends the data;
 *   only the five octets `\r\n.\r\n` do (or `.\r\n` at the very start). Hence
 *   `done` is reported exactly at the end of the first such sequence.
 *
 * Policies
 * --------
 * 'reject': bytes pass through unchanged (apart from unstuffing), the first bare
 *   CR/LF is recorded in `violation` and decoding continues to the real end of
 *   data so the session stays in sync (the engine then replies 550 5.6.11).
 *   A bare CR/LF is not a line ending at all here: `a\n..b` is kept verbatim.
 *
 * 'normalize': every bare CR and bare LF is rewritten to CRLF in the output, so
 *   the body handed on is strictly CRLF. Such a normalized line ending DOES
 *   start a new line for dot-unstuffing (a `..x` after a bare LF becomes `.x`),
 *   but it NEVER makes the next line eligible as the end-of-data marker: a `.`
 *   line after a bare line ending (`x\n.\r\n`) is ordinary content — its dot is
 *   removed like any leading dot, so it becomes an empty line — and decoding
 *   continues until a genuine `\r\n.\r\n`.
 *   Reasoning: this is Postfix's `smtpd_forbid_bare_newline = normalize` rule
 *   ("require the standard End-of-DATA sequence <CR><LF>.<CR><LF>; otherwise
 *   process non-standard line endings as if the client sent <CR><LF>"). A legacy
 *   client that ends lines with bare LF also dot-stuffs after those LFs, so
 *   unstuffing there restores its content. An attacker gains nothing: the end
 *   of data is decided on the raw bytes only, so where this server ends the
 *   message can never differ from where a strict upstream ends it, and the
 *   stored body is strictly CRLF so a relay re-stuffs it correctly. The one
 *   ambiguous case, a lone `.` line after a bare line ending (an attempted
 *   smuggled end marker), is kept inside the body as an empty line — a smuggled
 *   "second message" that follows stays body text of the first one.
 *
 * Output buffers are slices of the input chunk (no copy) plus shared constant
 * buffers for inserted/held line-ending bytes; consumers must not mutate them.
 * State is O(1) (a state number and a few flags), never the message.
 */

export type BareLineEndingPolicy = 'reject' | 'normalize';
export type BareLineEndingViolation = 'bare-lf' | 'bare-cr';

export interface DecodeResult {
  /** Decoded body bytes from this chunk (dot-unstuffed; CRLF line endings). May be empty. Slices of the input where possible (no copy). */
  body: Buffer[];
  /** How many bytes of the input chunk belong to the DATA section (including the terminating CRLF.CRLF). If done, input[consumed..] is the next pipelined command(s). */
  consumed: number;
  /** True once the end-of-data marker <CRLF>.<CRLF> has been seen. */
  done: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

// Shared constant output pieces (never mutated).
const CR_BUF = Buffer.from([CR]);
const LF_BUF = Buffer.from([LF]);
const CRLF_BUF = Buffer.from([CR, LF]);

// Decoder states.
/** Inside a line. */
const S_MID = 0;
/** At the start of a line after a real CRLF (or at the start of data): a dot here may begin the end marker. */
const S_START = 1;
/** At the start of a line after a normalized bare line ending ('normalize' only): unstuff, but never the end marker. */
const S_START_BARE = 2;
/** After a CR that has been emitted; the next byte decides CRLF vs bare CR. */
const S_CR = 3;
/** After a `.` at S_START (the dot is dropped). */
const S_DOT = 4;
/** After `.` CR at S_START: CR held back (it is part of the marker if LF follows). */
const S_DOT_CR = 5;
/** End of data seen. */
const S_DONE = 6;

export class DataDecoder {
  readonly policy: BareLineEndingPolicy;
  private state = S_START;
  private _violation: BareLineEndingViolation | null = null;
  private _size = 0;
  private _bare = 0;

  constructor(policy: BareLineEndingPolicy) {
    this.policy = policy === 'normalize' ? 'normalize' : 'reject';
  }

  /** First bare CR / bare LF seen in 'reject' mode: 'bare-lf' | 'bare-cr' | null. Always null in 'normalize' mode (see `bareLineEndings`). */
  get violation(): BareLineEndingViolation | null {
    return this._violation;
  }

  /** Decoded body bytes so far. */
  get size(): number {
    return this._size;
  }

  /** Number of bare CR / bare LF seen so far (both policies; in 'normalize' mode, how many were rewritten). */
  get bareLineEndings(): number {
    return this._bare;
  }

  /** True once the end-of-data marker has been seen. */
  get done(): boolean {
    return this.state === S_DONE;
  }

  private bare(kind: BareLineEndingViolation): void {
    this._bare++;
    if (this._violation === null && this.policy === 'reject') this._violation = kind;
  }

  write(chunk: Buffer): DecodeResult {
    const body: Buffer[] = [];
    let st = this.state;
    if (st === S_DONE) return { body, consumed: 0, done: true };
    const len = chunk.length;
    const normalize = this.policy === 'normalize';
    let size = 0;
    let i = 0;
    let seg = 0; // start of the not-yet-emitted output run in `chunk`
    // Cached positions of the next CR / LF at or after i (len = none left).
    let nextCR = -1;
    let nextLF = -1;

    while (i < len) {
      switch (st) {
        case S_MID: {
          if (nextCR < i) {
            nextCR = chunk.indexOf(CR, i);
            if (nextCR < 0) nextCR = len;
          }
          if (nextLF < i) {
            nextLF = chunk.indexOf(LF, i);
            if (nextLF < 0) nextLF = len;
          }
          if (nextCR < nextLF) {
            i = nextCR + 1; // CR stays in the output run
            st = S_CR;
          } else if (nextLF < len) {
            // Bare LF (a CRLF's LF is consumed in S_CR, never found here).
            const j = nextLF;
            this.bare('bare-lf');
            if (normalize) {
              if (j > seg) {
                body.push(chunk.subarray(seg, j));
                size += j - seg;
              }
              body.push(CR_BUF);
              size += 1;
              seg = j; // the LF itself starts the next run
              st = S_START_BARE;
            }
            i = j + 1;
          } else {
            i = len;
          }
          break;
        }
        case S_CR: {
          if (chunk[i] === LF) {
            i++;
            st = S_START;
          } else {
            // Bare CR (already emitted); reprocess this byte.
            this.bare('bare-cr');
            if (normalize) {
              if (i > seg) {
                body.push(chunk.subarray(seg, i));
                size += i - seg;
              }
              body.push(LF_BUF);
              size += 1;
              seg = i;
              st = S_START_BARE;
            } else {
              st = S_MID;
            }
          }
          break;
        }
        case S_START: {
          if (chunk[i] === DOT) {
            if (i > seg) {
              body.push(chunk.subarray(seg, i));
              size += i - seg;
            }
            i++;
            seg = i; // dot dropped: stuffing or the start of the end marker
            st = S_DOT;
          } else {
            st = S_MID;
          }
          break;
        }
        case S_START_BARE: {
          if (chunk[i] === DOT) {
            if (i > seg) {
              body.push(chunk.subarray(seg, i));
              size += i - seg;
            }
            i++;
            seg = i; // unstuffed, but this line can never be the end marker
          }
          st = S_MID;
          break;
        }
        case S_DOT: {
          if (chunk[i] === CR) {
            i++;
            seg = i; // hold the CR back
            st = S_DOT_CR;
          } else {
            st = S_MID; // ordinary stuffed line (a bare LF is handled by S_MID)
          }
          break;
        }
        case S_DOT_CR: {
          if (chunk[i] === LF) {
            // <CRLF>.<CRLF>: nothing of the marker is emitted.
            i++;
            this.state = S_DONE;
            this._size += size;
            return { body, consumed: i, done: true };
          }
          // The held CR was a bare CR after a lone dot; reprocess this byte.
          this.bare('bare-cr');
          if (normalize) {
            body.push(CRLF_BUF);
            size += 2;
            st = S_START_BARE;
          } else {
            body.push(CR_BUF);
            size += 1;
            st = S_MID;
          }
          seg = i;
          break;
        }
        default:
          // Unreachable; fail closed as "in the middle of a line".
          st = S_MID;
      }
    }

    if (len > seg) {
      body.push(seg === 0 ? chunk : chunk.subarray(seg, len));
      size += len - seg;
    }
    this.state = st;
    this._size += size;
    return { body, consumed: len, done: false };
  }
}

/**
 * Bare CR / bare LF detection (and optional normalization) for BDAT chunks:
 * raw, length-delimited data without dot-stuffing. A CR at the end of one chunk
 * is resolved by the first byte of the next; call `finish()` after the LAST
 * chunk to resolve a trailing CR.
 *
 * 'reject': returns the chunk unchanged and records the first violation.
 * 'normalize': returns slices of the chunk with CR / LF inserted to make every
 * line ending CRLF (constant shared buffers; do not mutate); `violation` stays
 * null, `bareLineEndings` counts the rewrites.
 */
export class BareLineEndingScanner {
  readonly policy: BareLineEndingPolicy;
  private pendingCR = false;
  private _violation: BareLineEndingViolation | null = null;
  private _bare = 0;
  private _size = 0;

  constructor(policy: BareLineEndingPolicy) {
    this.policy = policy === 'normalize' ? 'normalize' : 'reject';
  }

  /** First bare CR / bare LF seen in 'reject' mode, else null. */
  get violation(): BareLineEndingViolation | null {
    return this._violation;
  }

  /** Number of bare CR / bare LF seen so far (both policies). */
  get bareLineEndings(): number {
    return this._bare;
  }

  /** Output bytes so far (after normalization). */
  get size(): number {
    return this._size;
  }

  private bare(kind: BareLineEndingViolation): void {
    this._bare++;
    if (this._violation === null && this.policy === 'reject') this._violation = kind;
  }

  /** Returns the (possibly normalized) bytes of `chunk`. */
  scan(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const len = chunk.length;
    if (len === 0) return out;
    const normalize = this.policy === 'normalize';
    let i = 0;
    let seg = 0;
    let size = 0;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (chunk[0] === LF) {
        i = 1;
      } else {
        this.bare('bare-cr');
        if (normalize) {
          out.push(LF_BUF);
          size += 1;
        }
      }
    }
    let nextCR = -1;
    let nextLF = -1;
    while (i < len) {
      if (nextCR < i) {
        nextCR = chunk.indexOf(CR, i);
        if (nextCR < 0) nextCR = len;
      }
      if (nextLF < i) {
        nextLF = chunk.indexOf(LF, i);
        if (nextLF < 0) nextLF = len;
      }
      if (nextCR < nextLF) {
        const j = nextCR;
        if (j + 1 >= len) {
          this.pendingCR = true; // resolved by the next chunk or finish()
          break;
        }
        if (chunk[j + 1] === LF) {
          i = j + 2;
          continue;
        }
        this.bare('bare-cr');
        if (normalize) {
          out.push(chunk.subarray(seg, j + 1), LF_BUF);
          size += j + 2 - seg;
          seg = j + 1;
        }
        i = j + 1;
      } else if (nextLF < len) {
        const j = nextLF;
        this.bare('bare-lf');
        if (normalize) {
          if (j > seg) out.push(chunk.subarray(seg, j));
          out.push(CR_BUF);
          size += j - seg + 1;
          seg = j;
        }
        i = j + 1;
      } else {
        break;
      }
    }
    if (len > seg) {
      out.push(seg === 0 ? chunk : chunk.subarray(seg, len));
      size += len - seg;
    }
    this._size += size;
    return out;
  }

  /** Call after the last chunk: resolves a trailing CR as bare (in 'normalize' mode returns the LF to append). */
  finish(): Buffer[] {
    if (!this.pendingCR) return [];
    this.pendingCR = false;
    this.bare('bare-cr');
    if (this.policy === 'normalize') {
      this._size += 1;
      return [LF_BUF];
    }
    return [];
  }
}
