/**
 * @mailgate/plugin-acl — the whole public API.
 *
 *   plugins:
 *     - use: "@mailgate/plugin-acl"
 *       with: { localDomains: [example.com], relayFrom: [192.0.2.0/24] }
 *
 * See README.md for every option and the open-relay guarantees.
 */
import { aclPlugin } from './plugin.js';

export default aclPlugin;
export { aclPlugin };
export {
  aclOptionsSchema,
  ruleSchema,
  type AclOptions,
  type AclOptionsInput,
  type AclRule,
  type AclRuleInput,
  type AclStage,
  type RateLimit,
} from './options.js';
export { MemoryCounterStore, isCounterStore, type CounterStore, type MemoryCounterStoreOptions } from './counters.js';
export { hashPassword, verifyPassword, passwordHashScheme } from './password.js';
export { parseUsersFile, type UserEntry, type UserTable, type UsersFormat } from './users.js';
