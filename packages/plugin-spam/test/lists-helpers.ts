/**
 * Helpers shared by the DNS list and rule tests: a RuleInput builder and a resolver
 * pointed at a loopback test DNS server.
 */
import { DnsResolver } from '@mailgate/core';
import type { RuleInput } from '../src/rules.js';

/** The header fields of the plain, well-formed base message. */
export const BASE_HEADERS: Readonly<Record<string, string>> = {
  From: 'Ann Example <ann@example.com>',
  To: 'bob@example.org',
  Subject: 'Lunch on Friday',
  Date: 'Tue, 01 Jul 2025 10:00:00 +0000',
  'Message-ID': '<1@example.com>',
  'Content-Type': 'text/plain; charset=utf-8',
};

/** A plain, well-formed message; override what a test is about. */
export function ruleInput(overrides: Partial<RuleInput> & { headerMap?: Record<string, string> } = {}): RuleInput {
  const { headerMap, ...rest } = overrides;
  const fields = headerMap ?? BASE_HEADERS;
  return {
    headers: Object.entries(fields).map(([name, value]) => ({ name, value })),
    subject: fields.Subject ?? '',
    from: fields.From ?? '',
    text: 'Shall we meet at noon?\n',
    html: '',
    urls: [],
    // rules read `urls` only
    urlHosts: [],
    attachments: [],
    truncated: false,
    ...rest,
  };
}

/** The time of receipt that goes with ruleInput's Date. */
export const RECEIVED = Date.UTC(2025, 6, 1, 10, 5, 0);

export function resolverFor(address: string, options: { timeout?: number; retries?: number } = {}): DnsResolver {
  return new DnsResolver({ servers: [address], timeout: options.timeout ?? 1_000, retries: options.retries ?? 1, cache: false });
}
