/**
 * The public shapes of the SPF checker (RFC 7208). The DNS side is only `resolve`, so the
 * core's shared DnsResolver fits as it is and its cache serves SPF like every other check.
 */
import type { DnsResolver } from '@mailgate/core';

export type SpfResultCode = 'none' | 'neutral' | 'pass' | 'fail' | 'softfail' | 'temperror' | 'permerror';

export interface SpfQuery {
  /** the SMTP client's address (IPv4, IPv6 or IPv4-mapped IPv6) */
  ip: string;
  /** MAIL FROM address; '' is the null reverse-path (then postmaster@helo is checked, §2.4) */
  sender: string;
  /** the HELO/EHLO argument */
  helo: string;
  /** this host's name, for %{r} in explanations (default "unknown") */
  receiver?: string;
}

export interface SpfDns {
  resolve: DnsResolver['resolve'];
}

export interface SpfOptions {
  dns: SpfDns;
  /** abort: the check rejects with `signal.reason` and asks nothing more */
  signal?: AbortSignal;
  /** terms that cause DNS lookups (include, a, mx, ptr, exists, redirect); default 10 (§4.6.4) */
  maxLookups?: number;
  /** lookups of those terms that find nothing; default 2 (§4.6.4) */
  maxVoidLookups?: number;
}

export interface SpfResult {
  result: SpfResultCode;
  /** the domain whose policy was checked (the sender's, or the HELO name) */
  domain: string;
  /** which identity was checked (RFC 7208 §9.1 `identity`) */
  identity?: 'mailfrom' | 'helo';
  /** the term that decided: "-all", "include:_spf.example.com", "default" when none matched */
  mechanism?: string;
  /** on fail only: the domain's exp= text, macro-expanded; absent when it has none or it could not be had */
  explanation?: string;
  /** on temperror/permerror: what went wrong */
  problem?: string;
}
