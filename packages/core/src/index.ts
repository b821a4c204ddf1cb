/**
 * @mailgate/core — the whole public API. Plugins and embedding programs import
 * only from here (and `@mailgate/core/testing` in tests).
 */
export { Gateway, createGateway, type GatewayOptions, type UseOptions, type TapStats } from './gateway.js';
export { loadGateway, gatewayFromYaml, importPlugin, type LoadGatewayOptions } from './loader.js';
export {
  definePlugin,
  isPlugin,
  type PluginDefinition,
  type PluginContext,
  type PluginGatewayView,
  type PluginCommand,
  type PluginCommandContext,
  type TapFn,
} from './plugin.js';
export { HookStage, type GatewayHooks, type HookName, type HeloInfo, type Credentials, type TapExtras, type TapContext } from './hooks.js';
export { accept, reject, tempfail, disconnect, isVerdict, verdictToReply, defaultReply, type Verdict, type VerdictKind, type VerdictOptions, type Stage } from './verdict.js';
export {
  Recipient,
  Transaction,
  type Session,
  type SessionData,
  type TransactionData,
  type RecipientData,
  type AuditEntry,
  type TlsInfo,
  type TransactionOutcome,
  type SpamVerdict,
} from './session.js';
export type { TransactionWithMessage } from './session.js';
export { Message, type MessageBody } from './spool/message.js';
export { Spool, type BodySink, type SpoolOptions } from './spool/spool.js';
export { SmtpSession, type EngineIO, type EngineOptions, type EngineContext, type PeerInfo } from './smtp/engine.js';
export { formatReply, type Reply } from './smtp/reply.js';
export { parseMailFrom, parseRcptTo, formatAddress, decodeXtext, encodeXtext, type Address, type Params, type SmtpSyntaxError } from './smtp/address.js';
export {
  parseRet,
  parseEnvid,
  parseNotify,
  parseOrcpt,
  decodeUtf8AddrXtext,
  encodeUtf8AddrXtext,
  formatOrcpt,
  MAX_ORCPT_LENGTH,
  type DsnNotify,
  type TransactionDsn,
  type RecipientDsn,
  type OriginalRecipient,
} from './smtp/dsn.js';
export {
  buildDeliveryReport,
  readHeaderSection,
  FULL_RETURN_LIMIT,
  type DeliveryReportInput,
  type DeliveryReportReason,
  type ReportedRecipient,
  type ReportedMessage,
} from './delivery-report.js';
export { parseHeaderBlock, formatHeader, findHeaderEnd, type Header } from './smtp/headers.js';
export { DataDecoder, BareLineEndingScanner, type BareLineEndingPolicy } from './smtp/data-decoder.js';
export { rfc5322Date } from './smtp/received-header.js';
export { createLogger, silentLogger, type Logger, type LogLevel, type LogFields, type LoggerOptions } from './log.js';
export { normalizeIp } from './server/listener.js';
export { clientKey } from './server/client-key.js';
export { parseIp, parseIpAsWritten, parseCidr, ipNetwork, cidrError, formatIp, sameIp, ipToBytes, ipFromBytes, IpSet, type IpAddress, type IpNetwork } from './net/ip.js';
export { untilAborted } from './until-aborted.js';
export type { SubmitOptions, SubmitResult } from './submit.js';
export { discardPlugin } from './plugins/discard.js';
export * from './config/index.js';
export * from './dns/index.js';
export { hashPassword, verifyPassword, passwordHashScheme } from './auth/password.js';
