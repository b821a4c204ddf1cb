/**
 * Delivery status notifications (RFC 3464): a multipart/report with a human-readable
 * part, the machine-readable message/delivery-status part and the original message's
 * headers (text/rfc822-headers, RFC 6522), or the whole message (message/rfc822) for
 * a failure the sender asked RET=FULL for; sent from the null reverse-path.
 *
 * Used by plugin-relay (failed, expired, delayed, relayed) and plugin-maildir
 * (delivered, RFC 3461 §5.2.2.1); the report goes out with `gateway.submit()`.
 */
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Message } from './spool/message.js';
import { encodeUtf8AddrXtext, type OriginalRecipient } from './smtp/dsn.js';
import { rfc5322Date } from './smtp/received-header.js';

/** One recipient the report is about: one delivery-status group. */
export interface ReportedRecipient {
  /** The recipient's address: reported as Final-Recipient. */
  address: string;
  /** The enhanced status code (RFC 3463): `5.1.1`, `4.4.7`, `2.0.0` … */
  status: string;
  /** A reply (`550 5.1.1 …`: Diagnostic-Code `smtp`) or our own text (`x-mailgate`); also the notice's line. */
  diagnostic: string;
  remoteMta?: string;
  willRetryUntil?: Date;
  /** From the recipient's ORCPT: reported as Original-Recipient. */
  orcpt?: OriginalRecipient;
}

/**
 * Why the report is sent, which is each recipient's Action:
 * `failed` / `expired` (a failure; `expired` after the retry limit), `delayed` (still
 * being retried), `relayed` (handed to a next hop that does not do DSN, for
 * NOTIFY=SUCCESS, RFC 3461 §5.2.2), `delivered` (delivered into the recipient's
 * mailbox, for NOTIFY=SUCCESS, RFC 3461 §5.2.2.1).
 */
export type DeliveryReportReason = 'failed' | 'expired' | 'delayed' | 'relayed' | 'delivered';

/** The original message: the path of a stored copy, or the core's `Message`. */
export type ReportedMessage = string | Message;

export interface DeliveryReportInput {
  /** Reporting-MTA, the From: domain and the Message-ID domain. */
  hostname: string;
  /** The original message's queue (or transaction) id: reported as X-Mailgate-Queue-ID. */
  queueId: string;
  /** The report's own id: its Message-ID and the start of its boundary. */
  reportId: string;
  /** Who the report goes to (the original sender, or the postmaster for a double bounce). */
  to: string;
  /** The original reverse-path ('' for a bounce). */
  originalSender: string;
  arrival: Date;
  recipients: ReportedRecipient[];
  reason: DeliveryReportReason;
  /** A failure of a report (sent from `<>`), reported to the postmaster. */
  doubleBounce?: boolean;
  /** The original message, for its header section (or the whole of it, RET=FULL). */
  original: ReportedMessage;
  /** The sender's ENVID: reported as Original-Envelope-Id. */
  envid?: string;
  /** The sender's RET: FULL returns the whole message with a failure (RFC 3461 §4.3; other reports return the headers). */
  ret?: 'FULL' | 'HDRS';
}

/** RET=FULL returns the whole message only up to this size; a larger one gets its headers. */
export const FULL_RETURN_LIMIT = 1024 * 1024;

const HEADER_LIMIT = 64 * 1024;

/** The whole original message (as latin1, without its final CRLF) when it is at most `limit` bytes, else undefined. */
export async function readWholeMessage(original: ReportedMessage, limit: number): Promise<string | undefined> {
  let bytes: Buffer;
  if (original instanceof Message) {
    if (original.size > limit) return undefined;
    bytes = await original.toBuffer();
    if (bytes.length > limit) return undefined;
  } else {
    const handle = await open(original, 'r');
    try {
      const { size } = await handle.stat();
      if (size > limit) return undefined;
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  }
  const text = bytes.toString('latin1');
  return text.endsWith('\r\n') ? text.slice(0, -2) : text;
}

/** The first `limit` bytes of a message. */
async function readHead(original: ReportedMessage, limit: number): Promise<Buffer> {
  if (original instanceof Message) {
    const parts: Buffer[] = [];
    let length = 0;
    const stream = original.stream();
    try {
      for await (const chunk of stream) {
        parts.push(chunk as Buffer);
        length += (chunk as Buffer).length;
        if (length >= limit) break;
      }
    } finally {
      stream.destroy();
    }
    return Buffer.concat(parts).subarray(0, limit);
  }
  const handle = await open(original, 'r');
  try {
    const buf = Buffer.alloc(limit);
    const { bytesRead } = await handle.read(buf, 0, limit, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * The header fields at the top of a message, as latin1 with CRLF line ends: up to the
 * first line that is neither a field nor a field's continuation (the empty line, or text
 * a sender put there without one), at most 64 KiB and only whole lines. Like Postfix's
 * cleanup: what goes back in a report is headers, never body text a sender can make a
 * report carry to whoever it names as the sender.
 */
export async function readHeaderSection(original: ReportedMessage): Promise<string> {
  const bytes = await readHead(original, HEADER_LIMIT);
  const lines = bytes.toString('latin1').split(/\r?\n/);
  // Read up to the limit: the last line may be cut short, and without its end it is not whole.
  if (bytes.length >= HEADER_LIMIT) lines.pop();
  const kept: string[] = [];
  for (const line of lines) {
    const field = /^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(line);
    const continuation = kept.length > 0 && /^[ \t]/.test(line);
    if (!field && !continuation) break;
    kept.push(line);
  }
  return kept.join('\r\n');
}

/** The Original-Recipient value (RFC 3464 §2.3.1; RFC 6533 §3 for `utf-8`, kept ASCII). */
export function originalRecipientField(orcpt: OriginalRecipient): string {
  return `${orcpt.type}; ${orcpt.type === 'utf-8' ? encodeUtf8AddrXtext(orcpt.address) : orcpt.address}`;
}

/** RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6: octets in a line, CRLF excluded. */
const MAX_LINE = 998;
/** RFC 2046 §5.1.1: characters in a boundary. */
const MAX_BOUNDARY = 70;

/**
 * The multipart boundary: the report's id and 12 random hex digits (unique enough on
 * their own), then the host name, as far as it fits in 70 characters and in the boundary
 * alphabet (RFC 2046 §5.1.1; a host name never ends in a space).
 */
function makeBoundary(reportId: string, hostname: string): string {
  return `${reportId}/${randomBytes(6).toString('hex')}/${hostname.replace(/[^0-9A-Za-z'()+_,./:=?-]/g, '')}`.slice(0, MAX_BOUNDARY);
}

/**
 * One line of the report as lines of at most 998 octets (in UTF-8): folded (RFC 5322
 * §2.2.3, which the delivery-status fields follow, RFC 3464 §2.1) before the last
 * space or tab that keeps the piece within the limit. A run of more than 998 octets
 * without one (a long token in a next hop's reply) is broken between characters, with
 * a space starting the continuation, which unfolding leaves in the text; a run of blanks
 * that long becomes one space (none at the end of the line).
 */
export function foldLine(line: string): string {
  if (Buffer.byteLength(line) <= MAX_LINE) return line;
  const pieces: string[] = [];
  let rest = line;
  while (Buffer.byteLength(rest) > MAX_LINE) {
    // `cut`: UTF-16 length of the longest prefix of whole characters within the limit
    let cut = 0;
    let octets = 0;
    for (const ch of rest) {
      const n = Buffer.byteLength(ch);
      if (octets + n > MAX_LINE) break;
      octets += n;
      cut += ch.length;
    }
    const first = rest.search(/[^ \t]/);
    if (first < 0 || first >= cut) {
      // a continuation that would be blanks only (RFC 5322 forbids it): its leading blanks as
      // one space, or none at the end of the line
      rest = first < 0 ? '' : ` ${rest.slice(first)}`;
      continue;
    }
    // fold before the last blank at index ≤ cut that leaves something other than blanks on this line
    let at = cut;
    while (at > first && rest[at] !== ' ' && rest[at] !== '\t') at--;
    if (at > first) {
      pieces.push(rest.slice(0, at));
      rest = rest.slice(at);
    } else {
      pieces.push(rest.slice(0, cut));
      rest = ` ${rest.slice(cut)}`;
    }
  }
  if (rest) pieces.push(rest);
  return pieces.join('\r\n');
}

/** What each reason says: Subject, the notice's text, Action, the returned headers' description. */
function wording(input: DeliveryReportInput): { subject: string; text: string; action: string; returned: string } {
  switch (input.reason) {
    case 'delayed':
      return {
        subject: 'Delayed Mail (still being retried)',
        text: 'Your message could not be delivered yet to the recipients below. Delivery will be retried; you do not need to resend it.',
        action: 'delayed',
        returned: 'Delayed',
      };
    case 'relayed':
      return {
        subject: 'Successful Mail Delivery Report',
        text: 'Your message was relayed to the recipients below. The next mail system does not report on delivery, so this is the last notice you will get from here about them.',
        action: 'relayed',
        returned: 'Relayed',
      };
    case 'delivered':
      return {
        subject: 'Successful Mail Delivery Report',
        text: 'Your message was successfully delivered to the destination(s) listed below. If the message was delivered to mailbox you will receive no further notifications.',
        action: 'delivered',
        returned: 'Delivered',
      };
    case 'failed':
    case 'expired':
      return {
        subject: input.doubleBounce
          ? 'Postmaster Copy: Undelivered Mail'
          : input.reason === 'expired'
            ? 'Undelivered Mail Returned to Sender (delivery time expired)'
            : 'Undelivered Mail Returned to Sender',
        text: input.doubleBounce
          ? `A delivery status notification (from <${oneField(input.originalSender)}>) could not be delivered.`
          : input.reason === 'expired'
            ? 'Your message could not be delivered within the time limit to one or more recipients. It has been returned below.'
            : "I'm sorry to have to inform you that your message could not be delivered to one or more recipients.",
        action: 'failed',
        returned: 'Undelivered',
      };
  }
}

/** The report, ready for `gateway.submit({ sender: '', recipients: [input.to], body })`. */
export async function buildDeliveryReport(input: DeliveryReportInput): Promise<Buffer> {
  const boundary = makeBoundary(input.reportId, input.hostname);
  // RFC 3461 §4.3: RET applies to failures; other reports return the headers only.
  const failure = input.reason === 'failed' || input.reason === 'expired';
  const whole = failure && input.ret === 'FULL' ? await readWholeMessage(input.original, FULL_RETURN_LIMIT).catch(() => undefined) : undefined;
  const headers = whole === undefined ? await readHeaderSection(input.original).catch(() => '') : '';
  const words = wording(input);
  const now = rfc5322Date(new Date());
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);
  push(
    `From: Mail Delivery System <MAILER-DAEMON@${input.hostname}>`,
    `To: <${oneField(input.to)}>`,
    `Subject: ${words.subject}`,
    `Date: ${now}`,
    `Message-ID: <${input.reportId}@${input.hostname}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `This is the mail system at host ${input.hostname}.`,
    '',
    words.text,
    '',
    ...input.recipients.map((r) => `<${oneField(r.address)}>: ${oneField(r.diagnostic)}`),
    '',
    `--${boundary}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    ...(input.envid !== undefined ? [`Original-Envelope-Id: ${oneField(input.envid)}`] : []),
    `Reporting-MTA: dns; ${input.hostname}`,
    `X-Mailgate-Queue-ID: ${input.queueId}`,
    `Arrival-Date: ${rfc5322Date(input.arrival)}`,
  );
  for (const r of input.recipients) {
    push(
      '',
      ...(r.orcpt ? [`Original-Recipient: ${originalRecipientField(r.orcpt)}`] : []),
      `Final-Recipient: rfc822; ${oneField(r.address)}`,
      `Action: ${words.action}`,
      `Status: ${r.status}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${oneField(r.remoteMta)}`] : []),
      `Diagnostic-Code: ${/^\d{3}\b/.test(r.diagnostic) ? 'smtp' : 'x-mailgate'}; ${oneField(r.diagnostic)}`,
      `Last-Attempt-Date: ${now}`,
      ...(r.willRetryUntil ? [`Will-Retry-Until: ${rfc5322Date(r.willRetryUntil)}`] : []),
    );
  }
  if (whole !== undefined) push('', `--${boundary}`, 'Content-Description: Undelivered Message', 'Content-Type: message/rfc822', '');
  else push('', `--${boundary}`, `Content-Description: ${words.returned} Message Headers`, 'Content-Type: text/rfc822-headers', '');
  // Our text (with the client's and the next hop's strings in it) as UTF-8: latin1 would keep
  // only the low byte of each character, and U+010A would become a LF. The original message
  // was read as latin1 and goes back byte for byte.
  return Buffer.concat([
    Buffer.from(`${lines.map(foldLine).join('\r\n')}\r\n`, 'utf8'),
    Buffer.from(whole ?? headers, 'latin1'),
    Buffer.from(`\r\n\r\n--${boundary}--\r\n`, 'utf8'),
  ]);
}

/** A string from a client or a server, for one line of a report: no control characters. */
function oneField(text: string): string {
  return text.replace(/\p{Cc}/gu, '?');
}
