import { z } from 'zod';
import { definePlugin } from '../plugin.js';
import { accept } from '../verdict.js';

/**
 * Built-in `discard`: accept (and claim) recipients of the given domains, or of any
 * domain with `"*"`, and store nothing. For benchmarks, smoke tests and as the
 * smallest example of a storage plugin. Like Haraka's queue/discard, never use it
 * in front of real mail.
 */
export const discardPlugin = definePlugin({
  name: 'discard',
  options: z.strictObject({
    domains: z.union([z.literal('*'), z.array(z.string().min(1)).min(1)]).default('*'),
  }),
  setup({ tap, options, gateway, log }) {
    const any = options.domains === '*';
    const domains = new Set(any ? [] : (options.domains as string[]).map((d) => d.toLowerCase()));
    for (const d of domains) gateway.addLocalDomain(d);
    const claimed = accept();
    tap('claim', (_session, _tx, rcpt) => (any || domains.has(rcpt.address.domain.toLowerCase()) ? claimed : undefined));
    tap('queue', (_session, tx) => {
      if (log.enabled('debug')) log.debug('discarded', { tx: tx.id, size: tx.message?.size });
      return undefined;
    });
  },
});
