/**
 * The Authentication-Results: header (RFC 8601) for what this gateway verified:
 *
 *   Authentication-Results: mx.example.net;
 *   	spf=pass smtp.mailfrom=ann@example.com;
 *   	dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256 header.b=AbCdEfGh;
 *   	dmarc=pass (p=reject) header.from=example.com
 *
 * Every value comes from the message or DNS (attacker-chosen): each is reduced to one
 * line of printable ASCII and written as a token or a quoted-string (RFC 2045 §5.1), and
 * comments have their parentheses and backslashes escaped, so nothing can end the field or
 * fake another method's result (header-text.ts).
 */
import type { SpfResult } from '../spf/index.js';
import type { DkimSignatureResult } from './dkim.js';
import type { DmarcResult } from './dmarc.js';
import { headerComment, headerValue } from '../header-text.js';

const FOLD = '\r\n\t';

export interface AuthResultsInput {
  /** the authserv-id: the gateway's hostname */
  receiver: string;
  spf?: { result: SpfResult; sender: string; helo: string } | undefined;
  dkim?: readonly DkimSignatureResult[] | undefined;
  dmarc?: DmarcResult | undefined;
}

/** The folded value of the header (without its name). */
export function authResultsValue(input: AuthResultsInput): string {
  const parts: string[] = [];
  if (input.spf) {
    const { result, sender, helo } = input.spf;
    // smtp.mailfrom for the MAIL FROM identity; the HELO identity (null sender) is smtp.helo.
    const property = sender && result.identity !== 'helo' ? `smtp.mailfrom=${value(sender)}` : `smtp.helo=${value(helo || result.domain)}`;
    parts.push(`spf=${result.result} ${property}`);
  }
  for (const sig of (input.dkim ?? []).slice(0, 10)) {
    const props = [
      sig.domain ? `header.d=${value(sig.domain)}` : '',
      sig.selector ? `header.s=${value(sig.selector)}` : '',
      sig.algorithm ? `header.a=${value(sig.algorithm)}` : '',
      sig.b ? `header.b=${value(sig.b)}` : '',
    ].filter(Boolean);
    const why = sig.comment ?? (sig.partialBody ? 'l= leaves part of the body unsigned' : undefined);
    parts.push([`dkim=${sig.result}`, why ? comment(why) : '', ...props].filter(Boolean).join(' '));
  }
  if (input.dmarc) {
    const d = input.dmarc;
    const policy = d.p !== undefined ? `p=${d.p.toUpperCase()}${d.sp !== undefined ? ` sp=${d.sp.toUpperCase()}` : ''}${d.disposition ? ` dis=${d.disposition.toUpperCase()}` : ''}` : d.comment;
    parts.push([`dmarc=${d.result}`, policy ? comment(policy) : '', d.domain ? `header.from=${value(d.domain)}` : ''].filter(Boolean).join(' '));
  }
  const id = value(input.receiver || 'localhost');
  if (parts.length === 0) return `${id}; none`;
  return `${id};${FOLD}${parts.join(`;${FOLD}`)}`;
}

/** An RFC 8601 property value or authserv-id: an RFC 2045 token, else a quoted-string. */
function value(text: string): string {
  return headerValue(text, 'token');
}

function comment(text: string): string {
  return headerComment(text, 120);
}
