/**
 * `Gateway.submit()`: a message the gateway made itself (a bounce, a delivery report)
 * handed to its own plugins, the way Postfix's bounce daemon hands its mail to cleanup.
 *
 * It runs through the same protocol engine as a client's mail, on bytes and without a
 * socket, in a session marked `internal`: the engine skips the client-policy hooks
 * (connect, helo, mail, rcpt, data) and runs `claim` and `queue`, so a local recipient
 * goes to the storage plugin that claims it (plugin-maildir) and any other to the relay,
 * with the spool, the size limit, the `Received:` header and the transaction log of any
 * other message. Nothing about the wire format is skipped: the body is dot-stuffed and
 * must use CRLF line endings, as on the wire.
 */
import type { EngineIO, SmtpSession } from './smtp/engine.js';
import type { Reply } from './smtp/reply.js';

export interface SubmitOptions {
  /** Envelope sender; `''` for the null sender `<>` (what bounces use). */
  sender: string;
  recipients: readonly string[];
  /** The whole message (header and body) with CRLF line endings, not dot-stuffed. */
  body: Buffer | AsyncIterable<Uint8Array>;
  /** MAIL's BODY= (default: 8BITMIME when a Buffer body has 8-bit bytes, else 7BIT). */
  bodyType?: '7BIT' | '8BITMIME';
}

export interface SubmitResult {
  /** The transaction id (in the `Received:` header and the log); undefined when MAIL was refused. */
  id: string | undefined;
  /** True when the message was taken (the end of data got 250) for every recipient in `accepted`. */
  queued: boolean;
  accepted: string[];
  refused: Array<{ recipient: string; reply: Reply }>;
  /**
   * What decided: the reply to the end of data, or the refusal of MAIL, or of DATA when
   * no recipient was accepted (then `554 5.5.1`), or the `421` of a gateway shutting down.
   */
  reply: Reply;
}

/** Opens the internal session a submission runs in (the gateway's engine context, `internal: true`). */
export type OpenInternalSession = (io: EngineIO) => SmtpSession;

export async function submitMessage(open: OpenInternalSession, hostname: string, options: SubmitOptions): Promise<SubmitResult> {
  const smtputf8 = [options.sender, ...options.recipients].some((a) => /[^\x00-\x7f]/.test(a));
  for (const address of [options.sender, ...options.recipients]) {
    // An address is put into a command line: it must not carry a line of its own. (A quoted
    // local part may hold < and >: the engine parses it like any client's.)
    if (/[\r\n\0]/.test(address)) throw new TypeError(`submit(): not an address: ${JSON.stringify(address)}`);
  }
  const bodyType = options.bodyType ?? (Buffer.isBuffer(options.body) && options.body.some((b) => b > 0x7f) ? '8BITMIME' : '7BIT');
  const dialogue = new InternalDialogue(open);
  const result: SubmitResult = { id: undefined, queued: false, accepted: [], refused: [], reply: { code: 554, text: 'not submitted' } };
  try {
    let reply = await dialogue.start();
    if (reply.code !== 220) return { ...result, reply };
    reply = await dialogue.command(`EHLO ${hostname}`);
    if (reply.code !== 250) return { ...result, reply };
    const mailParams = `${bodyType === '8BITMIME' ? ' BODY=8BITMIME' : ''}${smtputf8 ? ' SMTPUTF8' : ''}`;
    reply = await dialogue.command(`MAIL FROM:<${options.sender}>${mailParams}`);
    if (reply.code !== 250) return { ...result, reply };
    result.id = dialogue.transactionId;
    for (const recipient of options.recipients) {
      const answer = await dialogue.command(`RCPT TO:<${recipient}>`);
      if (answer.code === 250) result.accepted.push(recipient);
      else result.refused.push({ recipient, reply: answer });
    }
    reply = await dialogue.command('DATA');
    if (reply.code !== 354) {
      // No recipient was accepted (554): nothing was taken.
      result.accepted = [];
      return { ...result, reply };
    }
    reply = await dialogue.body(options.body);
    return { ...result, reply, queued: reply.code === 250, accepted: reply.code === 250 ? result.accepted : [] };
  } finally {
    await dialogue.end();
  }
}

/** One internal session: commands in, one parsed reply out per command. */
class InternalDialogue {
  private output = '';
  private readonly session;

  constructor(open: OpenInternalSession) {
    const io: EngineIO = {
      write: (data) => {
        this.output += data;
      },
      close: () => undefined,
      pause: () => undefined,
      resume: () => undefined,
    };
    this.session = open(io);
  }

  get transactionId(): string | undefined {
    return this.session.transaction?.id;
  }

  async start(): Promise<Reply> {
    await this.session.start();
    return this.take();
  }

  async command(line: string): Promise<Reply> {
    this.session.feed(Buffer.from(`${line}\r\n`, 'utf8'));
    await this.session.settled();
    return this.take();
  }

  /** Send the body dot-stuffed (RFC 5321 §4.5.2) and ended by `.`; the reply to the end of data. */
  async body(body: Buffer | AsyncIterable<Uint8Array>): Promise<Reply> {
    const stuffer = new DotStuffer();
    const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = Buffer.isBuffer(body) ? [body] : body;
    for await (const chunk of chunks) {
      this.session.feed(stuffer.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
      await this.session.settled();
      // A refusal before the end (the engine never sends one during DATA today) ends the wait.
      if (this.session.closed) return this.take();
    }
    this.session.feed(stuffer.end());
    await this.session.settled();
    return this.take();
  }

  async end(): Promise<void> {
    if (!this.session.closed) {
      this.session.feed(Buffer.from('QUIT\r\n'));
      await this.session.settled();
    }
    await this.session.ended();
  }

  /** The reply written since the last call (the last one, if there were several). */
  private take(): Reply {
    const text = this.output;
    this.output = '';
    const lines = text.split('\r\n').filter((l) => l.length > 0);
    const last = lines.findLastIndex((l) => /^\d{3}( |$)/.test(l));
    if (last < 0) return { code: 421, enhanced: '4.3.0', text: 'internal session ended without a reply' };
    let first = last;
    while (first > 0 && /^\d{3}-/.test(lines[first - 1]!)) first--;
    const code = Number(lines[last]!.slice(0, 3));
    let enhanced: string | undefined;
    const texts = lines.slice(first, last + 1).map((l) => {
      const m = /^(\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(l.slice(4));
      if (!m) return l.slice(4);
      enhanced ??= m[1];
      return m[2]!;
    });
    return { code, ...(enhanced ? { enhanced } : {}), text: texts.length === 1 ? texts[0]! : texts };
  }
}

/** Dot-stuffing across chunk boundaries, and the final `CRLF.CRLF`. */
class DotStuffer {
  /** The last two bytes sent (to know whether we are at the start of a line). */
  private tail = Buffer.from('\r\n');

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let from = 0;
    if (chunk[0] === 0x2e && this.atLineStart()) parts.push(Buffer.from('.'));
    for (let i = chunk.indexOf('\n.'); i >= 0; i = chunk.indexOf('\n.', i + 1)) {
      parts.push(chunk.subarray(from, i + 1), Buffer.from('.'));
      from = i + 1;
    }
    parts.push(chunk.subarray(from));
    this.tail = chunk.length >= 2 ? Buffer.from(chunk.subarray(-2)) : Buffer.concat([this.tail, chunk]).subarray(-2);
    return parts.length === 1 ? chunk : Buffer.concat(parts);
  }

  /** Only CRLF ends a line for the end of data: after a bare LF the engine still needs one. */
  end(): Buffer {
    return Buffer.from(this.tail[0] === 0x0d && this.tail[1] === 0x0a ? '.\r\n' : '\r\n.\r\n');
  }

  private atLineStart(): boolean {
    return this.tail[1] === 0x0a;
  }
}
