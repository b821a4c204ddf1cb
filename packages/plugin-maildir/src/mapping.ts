/**
 * Recipient → mailbox mapping: normalization, sub-addressing, aliases, catch-all,
 * the known-mailbox checks and the path template. Pure except for the optional
 * existence checks (`stat`), so it is unit-tested without a gateway.
 */
import { stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { LocalPartNormalizer, MaildirOptions, QuotaLimit } from './options.js';
import { foldDomain, isSafeFolderTag, unsafeComponent } from './safety.js';

/** One Maildir a recipient is delivered into. */
export interface Target {
  /** The final mailbox address, `user@domain` (with `+tag` when delivered through a sub-address). */
  address: string;
  /** The mailbox's Maildir (INBOX): what quotas are counted on. */
  mailbox: string;
  /** The Maildir written into: the mailbox itself, or its Maildir++ folder `.tag` (created on delivery if missing). */
  dir: string;
  quota: QuotaLimit | undefined;
}

export type Resolution =
  | { kind: 'deliver'; targets: Target[] }
  /** Not one of our domains: say nothing, another storage plugin may claim it. */
  | { kind: 'skip' }
  /** A served domain, but no such user: 550 5.1.1. */
  | { kind: 'unknown'; reason: string }
  /** The address could name a path outside the root, or is not a plain mailbox name: 550 5.1.3. */
  | { kind: 'unsafe'; reason: string }
  /** Configuration problem found at run time (alias target in a domain we do not serve): 451 4.3.5. */
  | { kind: 'error'; reason: string };

export interface MapperOptions {
  options: MaildirOptions;
  /** `root` and `mailbox` already resolved to absolute paths. */
  root: string | undefined;
  mailbox: string | undefined;
  /** Used when `domains` is omitted: the gateway's local domains. */
  isLocalDomain: (domain: string) => boolean;
  /** Used when `domains` is omitted: the gateway's local domains, in the order declared. */
  listLocalDomains?: () => string[];
  /** Injected for tests: does this directory exist? */
  isDirectory?: (path: string) => Promise<boolean>;
  /** Collect configuration problems here instead of throwing them (schema validation). */
  problems?: MappingProblem[];
}

/** A mistake in the mapping options (bad address, target outside `domains`, alias loop), with its option path. */
export interface MappingProblem {
  path: (string | number)[];
  message: string;
}

/** Alias expansion deeper than this is refused (loops are refused at setup; this guards the catch-all chains). */
const MAX_DEPTH = 16;

interface Parsed {
  user: string;
  tag: string | undefined;
  /** The separator character that split off the tag. */
  separatorChar: string;
  domain: string;
}

export class Mapper {
  private readonly o: MaildirOptions;
  private readonly anyDomain: boolean;
  private readonly domains: Set<string> | undefined;
  private readonly aliases = new Map<string, string[]>();
  private readonly mailboxes = new Map<string, QuotaLimit | undefined>();
  private readonly catchAll = new Map<string, string>();
  private readonly separators: string;
  private readonly custom: LocalPartNormalizer | undefined;
  private readonly isDirectory: (path: string) => Promise<boolean>;
  private readonly postmaster: string | undefined;
  private readonly rootPrefix: string;
  /** Normalized alias key → the key as written (for error paths). */
  private readonly keyOrigin = new Map<string, string>();

  constructor(private readonly m: MapperOptions) {
    const o = (this.o = m.options);
    this.anyDomain = o.domains === '*';
    this.domains = Array.isArray(o.domains) ? new Set(o.domains.map((d) => mustFold(d))) : undefined;
    this.separators = o.subaddress === false ? '' : o.subaddress.separator;
    this.custom = o.normalize.custom;
    this.isDirectory = m.isDirectory ?? isDirectory;
    this.rootPrefix = m.root === undefined ? '' : m.root.endsWith(sep) ? m.root : m.root + sep;
    const problems: MappingProblem[] = [];
    for (const [key, value] of Object.entries(o.aliases)) {
      const k = this.normalizeKey(key, problems, ['aliases', key], `alias "${key}"`);
      if (k === undefined) continue;
      const list = Array.isArray(value) ? value : [value];
      const targets = list.map((t, i) => this.normalizeKey(t, problems, Array.isArray(value) ? ['aliases', key, i] : ['aliases', key], `target "${t}"`, true));
      if (this.aliases.has(k)) problems.push({ path: ['aliases', key], message: `alias "${key}" is given twice (after normalization: ${k})` });
      this.aliases.set(k, targets.filter((t): t is string => t !== undefined));
      this.keyOrigin.set(k, key);
    }
    for (const [i, entry] of (o.mailboxes ?? []).entries()) {
      const address = typeof entry === 'string' ? entry : entry.address;
      const k = this.normalizeKey(address, problems, ['mailboxes', i], `mailbox "${address}"`);
      if (k !== undefined) this.mailboxes.set(k, typeof entry === 'string' ? undefined : entry.quota);
    }
    for (const [domain, target] of Object.entries(o.catchAll)) {
      const d = foldDomain(domain);
      if (d === undefined) {
        problems.push({ path: ['catchAll', domain], message: `"${domain}" is not a domain name` });
        continue;
      }
      if (this.domains && !this.domains.has(d)) problems.push({ path: ['catchAll', domain], message: `"${domain}" is not one of \`domains\`` });
      const t = this.normalizeKey(target, problems, ['catchAll', domain], `target "${target}"`, true);
      if (t !== undefined) this.catchAll.set(d, t.includes('@') ? t : `${t}@${d}`);
    }
    if (o.postmaster !== undefined) this.postmaster = o.postmaster;
    else if (this.domains) this.postmaster = `postmaster@${[...this.domains][0]!}`;
    this.findLoops(problems);
    if (m.problems) m.problems.push(...problems);
    else if (problems.length > 0) throw new Error(problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; '));
  }

  /** Normalize an address (or bare local part) from the options the same way as a recipient. */
  private normalizeKey(text: string, problems: MappingProblem[], path: (string | number)[], what: string, target = false): string | undefined {
    const at = text.lastIndexOf('@');
    const local = at < 0 ? text : text.slice(0, at);
    let domain = '';
    if (at >= 0) {
      const d = foldDomain(text.slice(at + 1));
      if (d === undefined) {
        problems.push({ path, message: `${what}: not a valid domain` });
        return undefined;
      }
      if (this.domains && !this.domains.has(d)) {
        problems.push({ path, message: `${what}: ${d} is not one of \`domains\`${target ? ' (alias and catch-all targets must be mailboxes this plugin delivers)' : ''}` });
        return undefined;
      }
      domain = d;
    }
    // Keys keep their tag: "user+tag@" may be an alias of its own, and a target may name a folder.
    const folded = this.normalizeLocal(local, domain);
    if (typeof folded !== 'string') {
      problems.push({ path, message: `${what}: ${folded.reason}` });
      return undefined;
    }
    return domain ? `${folded}@${domain}` : folded;
  }

  /** NFC, case folding, dot stripping and the custom step on the user part; the tag is kept. Returns the reason when unsafe. */
  private normalizeLocal(local: string, domain: string): string | { reason: string } {
    // UTF-8 local parts must come in NFC (RFC 6532 §3.1) and be stable under NFKC: no
    // singletons such as the Kelvin sign (U+212A, which NFC makes an ASCII "K"), no
    // fullwidth or ligature look-alikes. Checked before case folding.
    if (local.normalize('NFC') !== local) return { reason: 'unsafe mailbox name (not in Unicode NFC)' };
    if (local.normalize('NFKC') !== local) return { reason: 'unsafe mailbox name (Unicode compatibility characters)' };
    let l = local;
    if (this.o.normalize.lowercase) l = l.toLowerCase();
    const p = this.split(l);
    let user = p.user;
    if (this.o.normalize.stripDots) user = user.replace(/\./g, '');
    if (this.custom) user = this.custom(user, domain);
    const bad = unsafeComponent(user);
    if (bad) return { reason: `unsafe mailbox name (${bad})` };
    return p.tag === undefined ? user : `${user}${p.separatorChar}${p.tag}`;
  }

  private split(local: string): { user: string; tag: string | undefined; separatorChar: string } {
    if (this.separators) {
      for (let i = 1; i < local.length; i++) {
        const ch = local[i]!;
        if (this.separators.includes(ch)) return { user: local.slice(0, i), tag: local.slice(i + 1), separatorChar: ch };
      }
    }
    return { user: local, tag: undefined, separatorChar: '' };
  }

  /**
   * Refuse alias loops at setup. Bare keys apply to every domain, so the graph is
   * walked from every key in every listed domain (or in the keys' own domains and one
   * stand-in domain when `domains` is "*" or omitted), with the same lookups as delivery.
   */
  private findLoops(problems: MappingProblem[]): void {
    const domains = new Set(this.domains ?? []);
    for (const key of this.aliases.keys()) {
      const at = key.lastIndexOf('@');
      if (at >= 0) domains.add(key.slice(at + 1));
    }
    if (!this.domains) domains.add('domain.invalid');
    const starts = new Set<string>();
    for (const key of this.aliases.keys()) {
      if (key.includes('@')) starts.add(key);
      else for (const d of domains) starts.add(`${key}@${d}`);
    }
    const state = new Map<string, 1 | 2>();
    const reported = new Set<string>();
    const visit = (address: string, path: string[]): void => {
      if (state.get(address) === 2) return;
      if (state.get(address) === 1) {
        const loop = [...path.slice(path.indexOf(address)), address].join(' → ');
        if (!reported.has(loop)) {
          const origin = this.keyOrigin.get(address) ?? this.keyOrigin.get(address.slice(0, address.lastIndexOf('@')));
          problems.push({ path: origin === undefined ? ['aliases'] : ['aliases', origin], message: `alias loop: ${loop}` });
        }
        reported.add(loop);
        return;
      }
      state.set(address, 1);
      for (const t of this.aliasLookup(address) ?? []) visit(t, [...path, address]);
      state.set(address, 2);
    };
    for (const start of starts) visit(start, []);
  }

  /** The alias targets of a qualified, normalized address (whole address, then without the tag, then bare keys). */
  private aliasLookup(address: string): string[] | undefined {
    const at = address.lastIndexOf('@');
    const domain = address.slice(at + 1);
    const p = this.split(address.slice(0, at));
    return this.aliasFor(address, domain) ?? (p.tag === undefined ? undefined : this.aliasFor(`${p.user}@${domain}`, domain));
  }

  /** True if this plugin serves the domain (already folded). */
  serves(domain: string): boolean {
    if (this.anyDomain) return true;
    if (this.domains) return this.domains.has(domain);
    return this.m.isLocalDomain(domain);
  }

  /**
   * The address a bare `RCPT TO:<postmaster>` is delivered as: the `postmaster` option,
   * else postmaster@ the first of `domains`; with `domains` omitted, postmaster@ the first
   * of the gateway's local domains (declared by other plugins, e.g. plugin-acl's
   * `localDomains`, possibly after this plugin's setup: so it is looked up each time).
   * Undefined with `"*"` or no local domain at all.
   */
  postmasterAddress(): string | undefined {
    if (this.postmaster !== undefined || this.anyDomain || this.domains) return this.postmaster;
    const first = this.m.listLocalDomains?.()[0];
    return first === undefined ? undefined : `postmaster@${first}`;
  }

  /** The domains declared local at setup (`domains` as a list), folded. */
  get listedDomains(): string[] {
    return this.domains ? [...this.domains] : [];
  }

  /**
   * Map one RCPT address to its Maildirs. `postmaster` is the core's flag for the bare
   * `<postmaster>` form (empty domain).
   */
  async resolve(local: string, rawDomain: string, postmaster = false): Promise<Resolution> {
    if (postmaster && rawDomain === '') {
      const address = this.postmasterAddress();
      if (address === undefined) return { kind: 'skip' };
      const at = address.lastIndexOf('@');
      if (at < 0) return { kind: 'skip' };
      local = address.slice(0, at);
      rawDomain = address.slice(at + 1);
    }
    if (this.m.mailbox !== undefined) {
      // Single-mailbox mode: the address names no path at all.
      const d = rawDomain.toLowerCase();
      if (!this.anyDomain && !this.serves(foldDomain(rawDomain) ?? d)) return { kind: 'skip' };
      return { kind: 'deliver', targets: [{ address: `${local}@${d}`, mailbox: this.m.mailbox, dir: this.m.mailbox, quota: this.o.quota }] };
    }
    const domain = foldDomain(rawDomain);
    if (domain === undefined) {
      if (this.anyDomain) return { kind: 'unsafe', reason: `domain "${rawDomain}" cannot name a mailbox directory` };
      return { kind: 'skip' };
    }
    if (!this.serves(domain)) return { kind: 'skip' };
    // Check the raw local part too: normalization (case folding) must never be what makes a name safe.
    const rawProblem = rawLocalProblem(local);
    if (rawProblem) return { kind: 'unsafe', reason: rawProblem };
    const normalized = this.normalizeLocal(local, domain);
    if (typeof normalized !== 'string') return { kind: 'unsafe', reason: normalized.reason };
    const targets: Target[] = [];
    const seen = new Set<string>();
    const outcome = await this.expand(`${normalized}@${domain}`, 0, [], targets, seen);
    if (outcome) return outcome;
    return { kind: 'deliver', targets };
  }

  /** Expand one normalized address (aliases, mailbox, catch-all) into targets. */
  private async expand(address: string, depth: number, chain: string[], targets: Target[], seen: Set<string>): Promise<Resolution | undefined> {
    if (depth > MAX_DEPTH || chain.includes(address)) return { kind: 'error', reason: `alias loop or chain too deep: ${[...chain, address].join(' → ')}` };
    const at = address.lastIndexOf('@');
    const whole = address.slice(0, at);
    const domain = address.slice(at + 1);
    if (!this.serves(domain)) return { kind: 'error', reason: `alias target ${address} is not in a domain this plugin serves` };
    const p = this.split(whole);
    const userAddress = `${p.user}@${domain}`;
    // Aliases: the whole address first (user+tag@), then user@; each also as a bare key.
    const alias = this.aliasLookup(address);
    if (alias) {
      for (const t of alias) {
        const failed = await this.expand(t, depth + 1, [...chain, address], targets, seen);
        if (failed) return failed;
      }
      return undefined;
    }
    if (await this.known(p.user, domain)) {
      const target = await this.target(p.user, p.tag, p.separatorChar, domain);
      if (target && !seen.has(target.dir)) {
        seen.add(target.dir);
        targets.push(target);
      }
      if (!target) return { kind: 'unsafe', reason: `mailbox path for ${userAddress} leaves the root` };
      return undefined;
    }
    const catchAll = this.catchAll.get(domain);
    if (catchAll !== undefined && !chain.includes(catchAll) && catchAll !== address) {
      return this.expand(catchAll, depth + 1, [...chain, address], targets, seen);
    }
    // An alias or catch-all that leads nowhere is the administrator's mistake: tempfail, never "user unknown".
    if (depth > 0) return { kind: 'error', reason: `${chain.join(' → ')} → ${userAddress}: no such mailbox` };
    return { kind: 'unknown', reason: `no mailbox ${userAddress}` };
  }

  private aliasFor(address: string, domain: string): string[] | undefined {
    let targets = this.aliases.get(address);
    if (targets === undefined) {
      const bare = address.slice(0, address.lastIndexOf('@'));
      targets = this.aliases.get(bare);
    }
    if (targets === undefined) return undefined;
    return targets.map((t) => (t.includes('@') ? t : `${t}@${domain}`));
  }

  private async known(user: string, domain: string): Promise<boolean> {
    const listed = this.o.mailboxes !== undefined;
    if (!listed && !this.o.mailboxExists) return true;
    if (listed && (this.mailboxes.has(`${user}@${domain}`) || this.mailboxes.has(user))) return true;
    if (this.o.mailboxExists) {
      const path = this.mailboxPath(user, domain);
      return path !== undefined && (await this.isDirectory(path));
    }
    return false;
  }

  private quotaFor(user: string, domain: string): QuotaLimit | undefined {
    return this.mailboxes.get(`${user}@${domain}`) ?? this.mailboxes.get(user) ?? this.o.quota;
  }

  /** Absolute mailbox path from the template, or undefined if it would leave the root. */
  mailboxPath(user: string, domain: string): string | undefined {
    if (this.m.root === undefined || unsafeComponent(user) || foldDomain(domain) !== domain) return undefined;
    const path = resolve(this.o.path.replace(/\{(root|domain|user)\}/g, (_, name: string) => (name === 'root' ? this.m.root! : name === 'domain' ? domain : user)));
    return path.startsWith(this.rootPrefix) ? path : undefined;
  }

  private async target(user: string, tag: string | undefined, separatorChar: string, domain: string): Promise<Target | undefined> {
    const mailbox = this.mailboxPath(user, domain);
    if (mailbox === undefined) return undefined;
    const quota = this.quotaFor(user, domain);
    const sub = this.o.subaddress;
    const address = tag === undefined ? `${user}@${domain}` : `${user}${separatorChar}${tag}@${domain}`;
    if (tag !== undefined && sub !== false && sub.folder && isSafeFolderTag(tag)) {
      const dir = `${mailbox}${sep}.${tag}`;
      if (sub.createFolder) return { address, mailbox, dir, quota };
      if (await this.isDirectory(dir)) return { address, mailbox, dir, quota };
    }
    return { address, mailbox, dir: mailbox, quota };
  }
}

/** Problems visible before any normalization: NUL, separators, controls, over-long. */
function rawLocalProblem(local: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f/\\]/.test(local)) return 'unsafe mailbox name (path separator or control character)';
  if (Buffer.byteLength(local, 'utf8') > 255) return 'unsafe mailbox name (too long)';
  return undefined;
}

function mustFold(domain: string): string {
  const d = foldDomain(domain);
  if (d === undefined) throw new Error(`domains: "${domain}" is not a domain name`);
  return d;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
