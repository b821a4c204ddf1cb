/**
 * The explanation of a fail (RFC 7208 §6.2): the exp= domain-spec is expanded, its one
 * TXT record is macro-expanded with the explanation-only letters (c, r, t) allowed.
 * Anything going wrong (DNS error, no record or several, bad syntax, non-ASCII) means
 * "no explanation", never an error result.
 */
import { printableAscii } from '../header-text.js';
import { expandDomainSpec, expandWithPtr, type CheckContext } from './context.js';
import type { HostResult } from './evaluate.js';
import { parseMacroString } from './macro.js';

/** Longest explanation passed on: it ends up in an SMTP reply line (RFC 5321 §4.5.3.1.5: 512 octets). */
export const MAX_EXPLANATION_LENGTH = 400;
/**
 * A longer exp= TXT record gives no explanation: what is passed on is at most
 * MAX_EXPLANATION_LENGTH, and macro-expanding a huge template (every %{d} up to 253
 * characters) would be work for text that is then cut off.
 */
export const MAX_EXPLANATION_TEMPLATE_LENGTH = 2048;

export async function explanationOf(ctx: CheckContext, exp: NonNullable<HostResult['exp']>): Promise<string | undefined> {
  try {
    const name = await expandDomainSpec(ctx, exp.tokens, exp.domain);
    const records = await ctx.lookups.query(name, 'TXT');
    if (records.length !== 1) return undefined;
    const template = records[0]!.join('');
    if (template.length > MAX_EXPLANATION_TEMPLATE_LENGTH) return undefined;
    const tokens = parseMacroString(template, 'explanation');
    const text = await expandWithPtr(ctx, tokens, exp.domain);
    // the sender's local-part and the HELO name are the client's words: nothing that
    // could break a reply line or a log line gets through
    return printableAscii(text, MAX_EXPLANATION_LENGTH);
  } catch (err) {
    if (ctx.lookups.signal?.aborted) throw ctx.lookups.signal.reason;
    return undefined;
  }
}
