/**
 * @mailgate/plugin-spam — the whole public API: the plugin (default export), its
 * options schema, the result it leaves on `tx.data.spam`, and the building blocks
 * (content parsing, Bayes, DNS lists, rules, SPF, DKIM and DMARC) for programs that embed them.
 */
import { spamPlugin } from './plugin.js';

export { spamPlugin, type SpamResult } from './plugin.js';
export { spamOptionsSchema, type SpamOptions, type SpamOptionsInput } from './options.js';
export { spamCommand, SPAM_USAGE } from './commands.js';
export { SpamChecks, type EnvelopeResult, type ContentResult, type AuthCheckResult } from './checks.js';
export { spamHeaders, type SpamHeader, type HeaderChoice } from './headers.js';
export {
  bayesTests,
  decideAction,
  spfTest,
  totalScore,
  formatScore,
  BAYES_BAND_NAMES,
  DEFAULT_BAYES_SCORES,
  DEFAULT_SPF_SCORES,
  DEFAULT_SPF_HELO_SCORES,
  DEFAULT_DKIM_SCORES,
  type SpamTest,
  type SpamAction,
  type Thresholds,
} from './score.js';
export { parseContent, type MessageContent, type ParseContentOptions } from './content.js';
export { BayesStore, tokenize, type Classification, type LearnOutcome } from './bayes/index.js';
export {
  queryIpLists,
  queryDomainLists,
  domainTargets,
  ipListSchema,
  domainListSchema,
  type IpList,
  type DomainList,
  type DnsListHit,
  type DnsListResult,
} from './dnslists.js';
export { compileRules, parseRulesConfig, evaluateRules, rulesConfigSchema, ruleSchema, BUILTIN_RULE_NAMES, type CompiledRules, type RuleHit, type RuleInput, type RulesConfig, type RulesConfigInput } from './rules.js';
export { checkSpf, checkSpfHelo, receivedSpfHeader, type SpfQuery, type SpfResult, type SpfResultCode } from './spf/index.js';
export {
  checkAuth,
  authTests,
  verifyDkim,
  evaluateDmarc,
  isAligned,
  organizationalDomain,
  authResultsValue,
  mailauthResolver,
  type AuthResult,
  type AuthSettings,
  type DkimCheck,
  type DkimSignatureResult,
  type DkimResultCode,
  type DmarcResult,
  type DmarcPolicy,
  type DmarcResultCode,
} from './auth/index.js';

export default spamPlugin;
