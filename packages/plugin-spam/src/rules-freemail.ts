/**
 * Free webmail domains, for the Reply-To rule: a reply address at a freemail provider on
 * mail "from" somewhere else is the classic advance-fee and invoice-fraud pattern
 * (SpamAssassin's FreeMail plugin). A short list of the big providers; admins add theirs
 * with `rules.freemailDomains`.
 */
import { parse } from 'tldts';

/** Providers with one registered domain per country (yahoo.co.uk, hotmail.fr, gmx.de …). */
const FREEMAIL_BRANDS = new Set(['yahoo', 'ymail', 'rocketmail', 'hotmail', 'outlook', 'live', 'msn', 'gmx', 'yandex', 'aol']);

const FREEMAIL_DOMAINS = new Set([
  'gmail.com', 'googlemail.com', 'icloud.com', 'me.com', 'mac.com',
  'protonmail.com', 'protonmail.ch', 'proton.me', 'pm.me', 'tutanota.com', 'tuta.io', 'hushmail.com', 'fastmail.com',
  'zoho.com', 'zohomail.com', 'mail.com', 'email.com', 'usa.com', 'lycos.com', 'inbox.com',
  'web.de', 't-online.de', 'freenet.de', 'libero.it', 'virgilio.it', 'tiscali.it', 'alice.it',
  'orange.fr', 'wanadoo.fr', 'laposte.net', 'free.fr', 'sfr.fr', 'seznam.cz', 'centrum.cz',
  'wp.pl', 'o2.pl', 'interia.pl', 'onet.pl', 'mail.ru', 'inbox.ru', 'list.ru', 'bk.ru', 'rambler.ru', 'ukr.net', 'abv.bg', 'inbox.lv',
  'qq.com', 'foxmail.com', '163.com', '126.com', 'yeah.net', 'sina.com', 'sohu.com', 'naver.com', 'daum.net', 'hanmail.net',
  'rediffmail.com', 'yopmail.com', 'mailinator.com', 'gmx.net', 'aim.com',
]);

export function isFreemail(domain: string, extra: ReadonlySet<string>): boolean {
  const d = domain.toLowerCase();
  if (FREEMAIL_DOMAINS.has(d) || extra.has(d)) return true;
  const parsed = parse(d, { extractHostname: false, validateHostname: false });
  // only the registered domain itself: mail.yahoo.example is nobody's freemail
  return parsed.domain === d && parsed.domainWithoutSuffix !== null && FREEMAIL_BRANDS.has(parsed.domainWithoutSuffix);
}
