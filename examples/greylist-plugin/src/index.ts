/**
 * mailgate-plugin-greylist: greylisting as a third-party plugin would write it.
 *
 * The first delivery attempt of an unknown (client network, sender, recipient)
 * triplet is refused with a temporary error; a real MTA retries after a few
 * minutes and is let through, most spam bots never retry (RFC 6647).
 */
import { definePlugin, durationSchema, tempfail, type Session } from '@mailgate/core';
import { z } from 'zod';
import { GreylistStore } from './store.js';

export const greylistOptions = z.strictObject({
  /** How long a new triplet must wait before a retry is accepted. */
  delay: durationSchema.default(5 * 60_000),
  /** How long an unconfirmed triplet is remembered (a retry after this starts over). */
  retryWindow: durationSchema.default(4 * 3_600_000),
  /** How long a confirmed triplet passes without delay (renewed by each message). */
  pass: durationSchema.default(36 * 86_400_000),
  /** Authenticated clients are never greylisted. */
  skipAuthenticated: z.boolean().default(true),
  /** Most entries kept in memory; the oldest are forgotten first. */
  maxEntries: z.int().min(100).default(100_000),
});

export type GreylistOptions = z.output<typeof greylistOptions>;

/** Group a client by network so a sender's pool of outbound servers counts as one (/24 IPv4, /64 IPv6). */
export function clientNetwork(ip: string): string {
  if (ip.includes(':')) return ip.split(':').slice(0, 4).join(':');
  return ip.split('.').slice(0, 3).join('.');
}

export default definePlugin({
  name: 'mailgate-plugin-greylist',
  options: greylistOptions,
  setup({ tap, options, log, onClose }) {
    const store = new GreylistStore(options);
    const timer = setInterval(() => store.prune(), 60_000);
    timer.unref();
    onClose(() => clearInterval(timer));

    tap('rcpt', (session: Session, tx, rcpt) => {
      if (options.skipAuthenticated && session.user) return undefined;
      const key = `${clientNetwork(session.remoteAddress)}/${tx.senderText.toLowerCase()}/${rcpt.text.toLowerCase()}`;
      const wait = store.check(key, Date.now());
      if (wait <= 0) return undefined; // pass: let the next plugin decide
      log.debug('greylisted', { key, wait });
      return tempfail(`Greylisted, please try again in ${Math.ceil(wait / 1000)} seconds`, {
        code: 451,
        enhanced: '4.7.1',
        reason: `greylisted ${key}`,
      });
    });
  },
});
