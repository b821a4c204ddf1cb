/**
 * For the DKIM/DMARC tests: the RFC 8463 examples and their keys (/work/shared/data/dkim),
 * DNS zones for them and for domains of our own signed with the same keys, and signing.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DnsResolver } from '@mailgate/core';
import { startTestDnsServer, type TestDnsServer, type TestZone } from '@mailgate/core/testing';
import { dkimSign } from '../src/auth/mailauth.js';
import { SHARED_DATA, useDnsFixture } from './helpers.js';

export const DKIM_DIR = resolve(SHARED_DATA, 'dkim');
export const readDkim = (name: string): Buffer => readFileSync(resolve(DKIM_DIR, name));

/** Why the RFC 8463 example tests cannot run ('' when they can): the shared data is not beside the repository. */
export const dkimDataMissing = existsSync(resolve(DKIM_DIR, 'dns.json')) ? '' : `${DKIM_DIR} not found`;
if (dkimDataMissing) console.warn(`DKIM tests: ${dkimDataMissing}; the RFC 8463 examples are skipped, our own messages are signed with fresh keys`);

/** The RFC 8463 keys, or (without the shared data) fresh keys of the same kinds, for signing our own test messages. */
const keys = dkimDataMissing ? freshKeys() : rfcKeys();
export const RSA_RECORD = keys.rsaRecord;
export const ED25519_RECORD = keys.ed25519Record;
export const RSA_KEY = keys.rsaKey;
/** The raw 32-byte Ed25519 seed (mailauth takes it as it is). */
export const ED25519_KEY = keys.ed25519Key;

interface Keys {
  rsaRecord: string;
  ed25519Record: string;
  rsaKey: Buffer;
  ed25519Key: Buffer;
  /** the RFC's published key records, to serve beside ours (none with fresh keys) */
  published: Record<string, { TXT: string }>;
}

function rfcKeys(): Keys {
  const published = (JSON.parse(readDkim('dns.json').toString('utf8')) as { records: Record<string, { TXT: string }> }).records;
  return {
    rsaRecord: published['test._domainkey.football.example.com']!.TXT,
    ed25519Record: published['brisbane._domainkey.football.example.com']!.TXT,
    rsaKey: readDkim('rfc8463-test.rsa.private.pem'),
    ed25519Key: Buffer.from(readDkim('rfc8463-brisbane.ed25519.private.key').toString('utf8').trim(), 'base64'),
    published,
  };
}

function freshKeys(): Keys {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ed = generateKeyPairSync('ed25519');
  const edJwk = ed.privateKey.export({ format: 'jwk' });
  return {
    rsaRecord: `v=DKIM1; k=rsa; p=${rsa.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
    ed25519Record: `v=DKIM1; k=ed25519; p=${Buffer.from(edJwk.x!, 'base64url').toString('base64')}`,
    rsaKey: Buffer.from(rsa.privateKey.export({ type: 'pkcs1', format: 'pem' })),
    ed25519Key: Buffer.from(edJwk.d!, 'base64url'),
    published: {},
  };
}

/**
 * The RFC 8463 zone, plus our own:
 * - signer.example (keys rsa._domainkey, ed._domainkey), mail.reject.example, mail.strict.example,
 *   reject.example, relaxed sub-signers: every key is one of the two RFC keys;
 * - DMARC policies: reject.example p=reject; strict.example p=reject adkim=s aspf=s;
 *   quar.example p=quarantine; none.example p=none; parent.example p=reject sp=quarantine;
 *   pct.example p=reject pct=50; bad-p.example p=bogus; servfail.example SERVFAIL.
 */
export function authZone(): TestZone {
  const zone: TestZone = {};
  for (const [name, rec] of Object.entries(keys.published)) zone[name] = { TXT: [rec.TXT] };
  for (const domain of ['signer.example', 'reject.example', 'mail.reject.example', 'mail.strict.example', 'strict.example', 'quar.example', 'none.example', 'parent.example', 'pct.example']) {
    zone[`rsa._domainkey.${domain}`] = { TXT: [RSA_RECORD] };
    zone[`ed._domainkey.${domain}`] = { TXT: [ED25519_RECORD] };
  }
  Object.assign(zone, {
    '_dmarc.reject.example': { TXT: ['v=DMARC1; p=reject; rua=mailto:dmarc@reject.example'] },
    '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject; adkim=s; aspf=s'] },
    '_dmarc.quar.example': { TXT: ['v=DMARC1; p=quarantine'] },
    '_dmarc.none.example': { TXT: ['v=DMARC1; p=none'] },
    '_dmarc.parent.example': { TXT: ['v=DMARC1; p=reject; sp=quarantine'] },
    '_dmarc.pct.example': { TXT: ['v=DMARC1; p=reject; pct=50'] },
    '_dmarc.bad-p.example': { TXT: ['v=DMARC1; p=bogus'] },
    '_dmarc.servfail.example': { TXT: ['v=DMARC1; p=reject'], servfail: true },
    'garbage._domainkey.signer.example': { TXT: ['v=DKIM1; k=rsa; p=!!!not base64 at all!!!'] },
    'junk._domainkey.signer.example': { TXT: ['\u0000\u00ff;;;==;p=;k=ed25519'] },
    'tmp._domainkey.signer.example': { TXT: [RSA_RECORD], servfail: true },
    // SPF for the end-to-end tests: loopback may send for these
    'reject.example': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    'bounce.signer.example': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
  } satisfies TestZone);
  return zone;
}

export async function startAuthDns(extra: TestZone = {}): Promise<{ server: TestDnsServer; resolver: DnsResolver }> {
  const server = await startTestDnsServer({ ...authZone(), ...extra });
  const resolver = new DnsResolver({ servers: [server.address], timeout: 2000, retries: 2 });
  return { server, resolver };
}

/** A test file's fixture: the auth DNS server, and cleanups run after its tests (see useDnsFixture). */
export const useAuthDns = () => useDnsFixture(startAuthDns);

export interface SignWith {
  domain: string;
  selector?: string;
  key?: 'rsa' | 'ed25519';
  maxBodyLength?: number;
}

/**
 * The message with DKIM-Signature fields on top, one per entry (relaxed/relaxed).
 *
 * signTime is always given. Without it mailauth 4.13.3 reads the clock twice per signature,
 * both times as Math.round(Date.now() / 1000) (lib/tools.js formatSignatureHeaderLine's
 * default t=): once for the header it signs, once, after crypto.sign, for the header it
 * emits. When a half-second boundary falls between the two reads the emitted t= is one more
 * than the signed one and the signature is "bad" whatever the key (a few signatures in
 * 10 000 in a loop; more under CPU load, where a preempted crypto.sign, or the first
 * signing in a process, widens the window). With signTime both headers carry the same t=.
 */
export async function sign(message: string, ...signers: SignWith[]): Promise<string> {
  const options: Parameters<typeof dkimSign>[1] & { signTime: Date } = {
    canonicalization: 'relaxed/relaxed',
    signTime: new Date(),
    signatureData: signers.map((s) => ({
      signingDomain: s.domain,
      selector: s.selector ?? (s.key === 'ed25519' ? 'ed' : 'rsa'),
      privateKey: s.key === 'ed25519' ? ED25519_KEY : RSA_KEY,
      algorithm: s.key === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256',
      ...(s.maxBodyLength !== undefined ? { maxBodyLength: s.maxBodyLength } : {}),
    })),
  };
  const { signatures, errors } = await dkimSign(message, options);
  if (errors.length > 0) throw new Error(`signing failed: ${String(errors[0])}`);
  return signatures + message;
}

/** A small message from `from`, CRLF line ends. */
export function mail(from: string, body = 'Hello there.\r\nBye.\r\n', extra: string[] = []): string {
  return [`From: ${from}`, 'To: bob@example.test', 'Subject: auth test', 'Date: Thu, 26 Nov 2026 10:00:00 +0000', `Message-ID: <auth-${Math.random().toString(36).slice(2)}@example.test>`, ...extra, '', ''].join('\r\n') + body;
}
