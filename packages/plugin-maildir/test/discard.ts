import { accept, definePlugin } from '@mailgate/core';
import { z } from 'zod';

/** A second storage plugin for tests (the core's built-in discard is not a public export). */
export const discardPlugin = definePlugin({
  name: 'discard',
  options: z.strictObject({ domains: z.array(z.string()) }),
  setup({ tap, options, gateway }) {
    for (const d of options.domains) gateway.addLocalDomain(d);
    tap('claim', (_s, _tx, rcpt) => (options.domains.includes(rcpt.address.domain.toLowerCase()) ? accept() : undefined));
  },
});
