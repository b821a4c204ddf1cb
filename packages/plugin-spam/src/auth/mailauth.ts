/**
 * The few functions of mailauth (CommonJS, by nodemailer's author) this plugin uses, with
 * the shapes we rely on described here rather than taken from its partial typings. They
 * are loaded by their own paths: the package's main module also loads ARC, BIMI (with an
 * HTTPS fetcher) and MTA-STS, none of which the plugin runs.
 *
 * mailauth does the DKIM canonicalization and the crypto (RSA, Ed25519 of RFC 8463) and
 * the DMARC record lookup; the plugin does the rest (limits, alignment, policy).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A dns.promises.resolve()-like function: records, or a Node-style error with `code`. */
export type MailauthResolver = (name: string, rrtype: string) => Promise<unknown[]>;

export interface MailauthDkimStatus {
  /** pass | fail | neutral | temperror | policy | none */
  result: string;
  comment?: string;
  /** the part of the body l= left unsigned, in bytes */
  underSized?: number;
}

export interface MailauthDkimResult {
  signingDomain?: string;
  selector?: string;
  /** the b= value */
  signature?: string;
  algo?: string;
  canonBodyLengthLimited?: boolean;
  status: MailauthDkimStatus;
}

export interface MailauthDkimOutput {
  /** every address of every From: field */
  headerFrom: string[];
  results: MailauthDkimResult[];
}

export interface MailauthDkimOptions {
  resolver: MailauthResolver;
  /** RSA keys shorter than this give `policy` (mailauth's default 1024) */
  minBitLength?: number;
  /** so mailauth takes no Return-Path from the message: the envelope is ours */
  sender?: string;
}

/** A DMARC record as mailauth parses it: lower-case tag names, `pct` a number. */
export interface MailauthDmarcRecord {
  p?: string;
  sp?: string;
  adkim?: string;
  aspf?: string;
  pct?: number;
  rr: string;
  /** the record was found at the organizational domain, not at the From domain */
  isOrgRecord: boolean;
}

export interface MailauthSignOptions {
  canonicalization?: string;
  algorithm?: string;
  signatureData: Array<{ signingDomain: string; selector: string; privateKey: string | Buffer; algorithm?: string; canonicalization?: string; maxBodyLength?: number }>;
}

const verify = (require('mailauth/lib/dkim/verify.js') as { dkimVerify: (input: Buffer, options: MailauthDkimOptions) => Promise<MailauthDkimOutput> }).dkimVerify;

/**
 * mailauth's verify, without the debug line mailauth 4.13.3 writes with console.log
 * ("TOTAL <n> EXPECTING <l>", lib/dkim/dkim-verifier.js) for every signature whose l= does
 * not match the body: any sender could make the gateway print it, into the stdout that
 * carries its JSON log. Exactly that line is dropped; everything else goes through.
 */
export function dkimVerify(input: Buffer, options: MailauthDkimOptions): Promise<MailauthDkimOutput> {
  silenceLengthDebugLine();
  return verify(input, options);
}

let silenced = false;
function silenceLengthDebugLine(): void {
  if (silenced) return;
  silenced = true;
  const log = console.log;
  console.log = function (...args: unknown[]): void {
    if (args.length === 4 && args[0] === 'TOTAL' && args[2] === 'EXPECTING') return;
    log.apply(console, args);
  };
}

/** _dmarc.<domain>, then _dmarc.<organizational domain> (RFC 7489 §6.6.3); false: no record. Throws on DNS trouble. */
export const getDmarcRecord = require('mailauth/lib/dmarc/get-dmarc-record.js') as (domain: string, resolver: MailauthResolver) => Promise<MailauthDmarcRecord | false>;

/** For tests and tools: DKIM-sign a message (the signature headers are in `signatures`). */
export const dkimSign = (require('mailauth/lib/dkim/sign.js') as {
  dkimSign: (input: Buffer | string, options: MailauthSignOptions) => Promise<{ signatures: string; errors: unknown[] }>;
}).dkimSign;
