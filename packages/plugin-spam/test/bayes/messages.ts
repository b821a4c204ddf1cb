/** Small MessageContent builders for the classifier's unit tests (no MIME needed there). */
import type { MessageContent } from '../../src/content.js';

export function makeContent(fields: Partial<MessageContent> & { extraHeaders?: Array<[string, string]> } = {}): MessageContent {
  const subject = fields.subject ?? '';
  const from = fields.from ?? 'Sender <sender@example.com>';
  const { extraHeaders = [], ...rest } = fields;
  return {
    headers: [
      { name: 'From', value: from },
      { name: 'Subject', value: subject },
      ...extraHeaders.map(([name, value]) => ({ name, value })),
    ],
    subject,
    from,
    text: '',
    html: '',
    urls: [],
    // as content.ts gives them: the distinct WHATWG hostnames of the URLs
    urlHosts: [...new Set((rest.urls ?? []).map((url) => new URL(url).hostname))],
    attachments: [],
    truncated: false,
    ...rest,
  };
}

const SPAM_WORDS = ['viagra', 'winner', 'lottery', 'unsubscribe', 'guaranteed', 'mortgage', 'refinance', 'cheap', 'offer', 'million'];
const HAM_WORDS = ['meeting', 'patch', 'kernel', 'review', 'lunch', 'tomorrow', 'agenda', 'release', 'thanks', 'minutes'];

/** The n-th synthetic spam or ham: shared class words plus words unique to the message (so digests differ). */
export function syntheticMessage(label: 'spam' | 'ham', n: number): MessageContent {
  const words = label === 'spam' ? SPAM_WORDS : HAM_WORDS;
  const picked = words.filter((_, i) => (n + i) % 3 !== 0);
  return makeContent({
    subject: `${label === 'spam' ? 'Amazing offer' : 'Re: weekly meeting'} ${n}`,
    from: label === 'spam' ? `Deals <deals${n}@bulk.example.biz>` : `Colleague <dev${n % 7}@corp.example.org>`,
    text: `${picked.join(' ')} unique${label}${n}word`,
    urls: label === 'spam' ? [`http://www.offers.example.biz/${n}`] : [],
  });
}
