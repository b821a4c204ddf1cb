/**
 * The trace header the gateway prepends to every message (RFC 5321 §4.4), with the
 * "with" protocol keywords of RFC 3848 and RFC 6531 (ESMTPSA, UTF8SMTPS, …).
 */
export interface ReceivedInfo {
  heloName: string | undefined;
  remoteAddress: string;
  hostname: string;
  esmtp: boolean;
  tls: boolean;
  authenticated: boolean;
  smtputf8: boolean;
  id: string;
  /** Named in a `for` clause only when there is exactly one recipient, so a Bcc list is not disclosed. */
  recipients: readonly string[];
  date: Date;
  /** The gateway made the message itself (a bounce): no client to name, like Postfix's `by host (Postfix) id …`. */
  internal?: boolean;
}

export function protocolKeyword(info: Pick<ReceivedInfo, 'esmtp' | 'tls' | 'authenticated' | 'smtputf8'>): string {
  if (!info.esmtp) return 'SMTP';
  const base = info.smtputf8 ? 'UTF8SMTP' : 'ESMTP';
  return `${base}${info.tls ? 'S' : ''}${info.authenticated ? 'A' : ''}`;
}

export function receivedHeaderValue(info: ReceivedInfo): string {
  const literal = info.remoteAddress.includes(':') ? `IPv6:${info.remoteAddress}` : info.remoteAddress;
  const helo = sanitize(info.heloName ?? 'unknown', info.smtputf8);
  const forClause = info.recipients.length === 1 ? `\r\n\tfor <${sanitize(info.recipients[0]!, info.smtputf8)}>` : '';
  if (info.internal) return `by ${info.hostname} (Mailgate) id ${info.id}${forClause};\r\n\t${rfc5322Date(info.date)}`;
  return (
    `from ${helo} ([${literal}])\r\n\tby ${info.hostname} (Mailgate) with ${protocolKeyword(info)} id ${info.id}` +
    `${forClause};\r\n\t${rfc5322Date(info.date)}`
  );
}

/**
 * HELO names and addresses come from the client: keep printable characters that have
 * no structure in a Received: header. Non-ASCII only in an SMTPUTF8 message (a plain
 * one must stay ASCII), and never invisible controls or bidi overrides, which could
 * make a name display as something else.
 */
function sanitize(text: string, utf8: boolean): string {
  const unsafe = utf8 ? /[^\x21-\x7e\u00a0-\u{10ffff}]|[\p{Cf}\p{Co}\p{Cs}();<>\\]/gu : /[^\x21-\x7e]|[();<>\\]/g;
  return text.replace(unsafe, '?').slice(0, 255);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date-time in local time with numeric zone, e.g. `Thu, 26 Nov 2026 15:38:35 +0000`. */
export function rfc5322Date(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${DAYS[date.getDay()]}, ${date.getDate()} ${MONTHS[date.getMonth()]} ${date.getFullYear()} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}
