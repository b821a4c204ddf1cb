/**
 * What to look up in DNS lists for one message: the client address for IP lists, and for
 * domain lists the registered domains (tldts, the Public Suffix List) of the envelope
 * sender, the HELO name, the From header and the message's URLs.
 *
 * Lists are keyed by registered domain (SURBL, URIBL and Spamhaus DBL all ask clients to
 * strip host parts), so `www.spam.example.co.uk` is queried as `example.co.uk`. URL hosts
 * that are IP literals are queried reversed, as an IP list would be (SURBL and URIBL list
 * addresses that way). Everything here is hostile input: names that could not be DNS
 * names are dropped without a query, and the work is bounded by `maxDomains`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { reverseLabels } from '@mailgate/core';
import { getDomain } from 'tldts';
import { hasDnsListLabels, type DomainCheck } from './dnslists-config.js';

/** SpamAssassin's uridnsbl_max_domains default. */
export const DEFAULT_MAX_DOMAINS = 20;
/** URLs looked at per message: enough for real mail, bounded for a message of a million links. */
const MAX_URLS_SCANNED = 5_000;
/** Longest URL text parsed; longer ones are cut (their host comes first anyway). */
const MAX_URL_LENGTH = 4_096;

export interface DomainTarget {
  /** What is looked up: a registered domain, or an IP address from a URL. */
  listed: string;
  /** The query name without the zone: the domain itself, or the reversed address. */
  prefix: string;
  /** Where the message names it. */
  checks: DomainCheck[];
}

export interface MessageDomains {
  /** Envelope sender (MAIL FROM): an address or a domain; empty for the null sender. */
  sender?: string | undefined;
  /** HELO/EHLO name. */
  helo?: string | undefined;
  /** From header: an address or a domain. */
  from?: string | undefined;
  /** URLs found in the message (with or without scheme). */
  urls?: readonly string[] | undefined;
  /** Hosts of URLs parsed already (MessageContent.urlHosts: WHATWG hostnames); looked at after `urls`. */
  urlHosts?: readonly string[] | undefined;
}

export interface DomainTargetOptions {
  /** At most this many distinct domains and addresses per message; default 20. */
  maxDomains?: number;
  /** Never look these up (your own domains, big senders): each matches itself and its subdomains. */
  neverQuery?: readonly string[];
}

/** A host name as DNS can carry it (IDNs to punycode), or undefined. */
function asDnsName(host: string): string | undefined {
  if (host.length === 0 || host.length > 253) return undefined;
  // domainToASCII returns '' for what cannot be a domain (and handles IDNs)
  const ascii = /^[\x21-\x7e]*$/.test(host) ? host.toLowerCase() : domainToASCII(host);
  const name = ascii.replace(/\.$/, '');
  if (name.length === 0 || name.length > 253) return undefined;
  return hasDnsListLabels(name) ? name : undefined;
}

/** The IP-list query prefix of an address (RFC 5782 §2.1, §2.4); IPv4-mapped IPv6 is IPv4. */
export function ipQueryPrefix(ip: string): string | undefined {
  const t = ip.trim().replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t)?.[1];
  const address = mapped ?? t.replace(/%.*$/, '');
  if (!isIPv4(address) && !isIPv6(address)) return undefined;
  return reverseLabels(address);
}

/** The registered domain of a host name, or undefined (an IP, a bare TLD, a name DNS cannot carry). */
export function registeredDomain(host: string): string | undefined {
  const name = asDnsName(host);
  if (!name || isIPv4(name)) return undefined;
  const domain = getDomain(name, { extractHostname: false, validateHostname: false });
  return domain ? asDnsName(domain) : undefined;
}

/** The domain of an address (`user@Example.COM` → `example.com`), or the text when it has no `@`. */
function domainOfAddress(text: string): string {
  const t = text.trim().replace(/^<|>$/g, '');
  const at = t.lastIndexOf('@');
  return at < 0 ? t : t.slice(at + 1);
}

/** The host of a URL (with or without scheme; `mailto:` gives the address's domain). */
export function urlHost(url: string): string | undefined {
  const text = url.trim().slice(0, MAX_URL_LENGTH);
  if (/^mailto:/i.test(text)) {
    const address = text.slice(7).split(/[?,]/)[0] ?? '';
    return domainOfAddress(safeDecode(address)) || undefined;
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  try {
    // the WHATWG parser undoes the usual obfuscations: IDNs, %-escapes, 0x7f000001 hosts
    const host = new URL(withScheme).hostname;
    return host.length > 0 ? host.replace(/^\[|\]$/g, '') : undefined;
  } catch {
    return undefined;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function isNeverQueried(name: string, neverQuery: readonly string[]): boolean {
  return neverQuery.some((skip) => name === skip || name.endsWith(`.${skip}`));
}

/**
 * The distinct domains (and URL addresses) of a message to look up, envelope and header
 * domains first so that a message stuffed with links cannot push them out.
 */
export function domainTargets(message: MessageDomains, options: DomainTargetOptions = {}): DomainTarget[] {
  const max = Math.max(0, Math.floor(options.maxDomains ?? DEFAULT_MAX_DOMAINS));
  const neverQuery = (options.neverQuery ?? []).map((d) => d.trim().toLowerCase().replace(/\.$/, '')).filter((d) => d.length > 0);
  const byName = new Map<string, DomainTarget>();

  const add = (listed: string | undefined, prefix: string | undefined, check: DomainCheck): void => {
    if (listed === undefined || prefix === undefined) return;
    const known = byName.get(listed);
    if (known) {
      if (!known.checks.includes(check)) known.checks.push(check);
      return;
    }
    if (byName.size >= max || isNeverQueried(listed, neverQuery)) return;
    byName.set(listed, { listed, prefix, checks: [check] });
  };
  const addDomain = (text: string | undefined, check: DomainCheck): void => {
    if (!text) return;
    const domain = registeredDomain(domainOfAddress(text));
    add(domain, domain, check);
  };

  const addHost = (host: string | undefined): void => {
    if (host === undefined) return;
    if (isIPv4(host) || isIPv6(host)) add(host, ipQueryPrefix(host), 'uri');
    else {
      const domain = registeredDomain(host);
      add(domain, domain, 'uri');
    }
  };

  addDomain(message.sender, 'sender');
  addDomain(message.helo, 'helo');
  addDomain(message.from, 'from');
  const urls = message.urls ?? [];
  for (let i = 0; i < urls.length && i < MAX_URLS_SCANNED; i++) {
    const url = urls[i];
    if (typeof url === 'string') addHost(urlHost(url));
  }
  const hosts = message.urlHosts ?? [];
  for (let i = 0; i < hosts.length && i < MAX_URLS_SCANNED; i++) {
    const host = hosts[i];
    // a WHATWG hostname writes an IPv6 address in brackets
    if (typeof host === 'string') addHost(host.replace(/^\[|\]$/g, ''));
  }
  return [...byName.values()];
}
