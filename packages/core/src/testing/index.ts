/**
 * `@mailgate/core/testing`: the helpers the project's own tests use, for plugin
 * authors too. Test servers listen on loopback with ports chosen at run time.
 */
export { TestSession, testSession } from './dialogue.js';
export { SmtpTestClient, type SmtpReply } from './smtp-client.js';
export { generateTestCertificate, type TestCertificate } from './certificate.js';
export { startTestDnsServer } from './dns-server.js';
export { listenDns, type DnsListener, type DnsMessageHandler } from './dns-listener.js';
export type { TestDnsServer, TestDnsServerOptions, TestDnsQuery, TestZone, TestZoneEntry, TestRecordType } from './dns-server.js';
export { startTestGateway, type TestGateway } from './gateway.js';
export { startDnsmasq, DNSMASQ, type TestDnsmasq } from './dnsmasq.js';
export { freePort } from './free-port.js';
export { startMailgate, MAILGATE_BIN, type MailgateProcess, type MailgateExit, type StartMailgateOptions } from './cli.js';
