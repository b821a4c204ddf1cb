/** The DNS stub resolver of @mailgate/core: one instance shared by every plugin. */
export { DnsResolver, type DnsResolverOptions } from './resolver.js';
export { DnsError, isDnsError, type DnsErrorCode } from './errors.js';
export type { DnsRecord, DnsRecordMap, DnsRecordType, MxRecord } from './answer.js';
export { normalizeName, reverseLabels, reverseName } from './names.js';
