/**
 * @mailgate/plugin-maildir — the whole public API.
 *
 *   plugins:
 *     - use: "@mailgate/plugin-maildir"
 *       with: { root: ./var/maildir, domains: [example.test] }
 */
import { maildirPlugin } from './plugin.js';

export default maildirPlugin;
export { maildirPlugin, type MaildirRecipient } from './plugin.js';
export { maildirOptionsSchema, type MaildirOptions, type MaildirOptionsInput, type LocalPartNormalizer } from './options.js';
export type { Target as MaildirTarget } from './mapping.js';
