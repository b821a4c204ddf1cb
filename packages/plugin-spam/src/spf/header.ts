/**
 * The Received-SPF header value (RFC 7208 §9.1), without the "Received-SPF:" prefix:
 *
 *   pass (mx.example.org: domain of a@example.com designates 192.0.2.1 as permitted sender)
 *     receiver=mx.example.org; client-ip=192.0.2.1; envelope-from="a@example.com"; ...
 *
 * (on one line). Sender, HELO name and problem text come from the client or from DNS:
 * control characters and non-ASCII become "?", the comment escapes its specials and
 * values are dot-atoms or quoted-strings, so nothing can end the header or add one.
 */
import { headerComment, headerValue, MAX_VALUE_LENGTH, printableAscii } from '../header-text.js';
import type { SpfQuery, SpfResult } from './types.js';

/** The comment holds the receiver, the sender and the address (each at most MAX_VALUE_LENGTH) and some words. */
const MAX_COMMENT_LENGTH = 4 * MAX_VALUE_LENGTH;

export function receivedSpfHeader(r: SpfResult, q: SpfQuery, receiver: string): string {
  const identity = r.identity ?? (q.sender ? 'mailfrom' : 'helo');
  const sender = identity === 'mailfrom' && q.sender ? q.sender : `postmaster@${q.helo}`;
  const who = clean(receiver) || 'unknown';
  const ip = clean(q.ip);
  const comment = `${who}: ${commentText(r, clean(sender), ip)}`;
  const pairs: Array<[string, string | undefined]> = [
    ['receiver', who],
    ['client-ip', ip],
    ['envelope-from', q.sender ? clean(q.sender) : undefined],
    ['helo', clean(q.helo) || undefined],
    ['identity', identity],
    ['mechanism', r.mechanism === undefined ? undefined : clean(r.mechanism)],
    ['problem', r.problem === undefined || (r.result !== 'permerror' && r.result !== 'temperror') ? undefined : clean(r.problem)],
  ];
  const list = pairs
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([key, value]) => `${key}=${headerValue(value, 'dot-atom')};`)
    .join(' ');
  return `${r.result} ${headerComment(comment, MAX_COMMENT_LENGTH)} ${list}`;
}

function commentText(r: SpfResult, sender: string, ip: string): string {
  switch (r.result) {
    case 'pass':
      return `domain of ${sender} designates ${ip} as permitted sender`;
    case 'fail':
      return `domain of ${sender} does not designate ${ip} as permitted sender`;
    case 'softfail':
      return `domain of transitioning ${sender} does not designate ${ip} as permitted sender`;
    case 'neutral':
      return `${ip} is neither permitted nor denied by domain of ${sender}`;
    case 'none':
      return `domain of ${sender} does not designate permitted sender hosts`;
    case 'temperror':
      return `error in processing during lookup of ${sender}`;
    case 'permerror':
      return `permanent error in processing domain of ${sender}`;
  }
}

/** Printable ASCII only (header-text.ts's value rule), at most MAX_VALUE_LENGTH characters; not a string: ''. */
function clean(value: unknown): string {
  return typeof value === 'string' ? printableAscii(value, MAX_VALUE_LENGTH) : '';
}
