/**
 * Lists in the options: entries written inline and entries read from files
 * (`{ file: ./blocked.txt }`, one entry a line), compiled into one matcher that is
 * rebuilt when a file changes.
 */
import { cidrError, IpSet, parseCidr, type Logger } from '@mailgate/core';
import { FileError, resolvePath, splitListFile, WatchedFile } from './files.js';
import { canonicalDomain, domainError } from './names.js';
import {
  anyOf,
  compileAddressPattern,
  compileHostPattern,
  compileUserPattern,
  type AddressPredicate,
  type NamePredicate,
} from './patterns.js';

export type ListEntry = string | { file: string };

/** What the entries of a list are. */
export type ListKind = 'ip' | 'domain' | 'domainPattern' | 'host' | 'address' | 'user';

export interface ListMatchers {
  ip: IpSet;
  /** Exact domains, canonical. */
  domain: Set<string>;
  /** Exact domains and `.suffix` (subdomains). */
  domainPattern: NamePredicate;
  host: NamePredicate;
  address: AddressPredicate;
  user: NamePredicate;
}

/** Why `text` is not a valid entry of a `kind` list, or undefined. */
export function entryError(kind: ListKind, text: string): string | undefined {
  const t = text.trim();
  switch (kind) {
    case 'ip':
      return cidrError(t);
    case 'domain':
      return domainError(t);
    case 'domainPattern':
      return domainError(t.startsWith('.') ? t.slice(1) : t);
    case 'host': {
      const r = compileHostPattern(t);
      return typeof r === 'string' ? r : undefined;
    }
    case 'address': {
      const r = compileAddressPattern(t);
      return typeof r === 'string' ? r : undefined;
    }
    case 'user': {
      const r = compileUserPattern(t);
      return typeof r === 'string' ? r : undefined;
    }
  }
}

/** Compile validated entries (invalid ones throw). */
export function compileEntries<K extends ListKind>(kind: K, texts: readonly string[]): ListMatchers[K] {
  const must = <T>(value: T | string, text: string): T => {
    if (typeof value === 'string') throw new Error(`${JSON.stringify(text)}: ${value}`);
    return value;
  };
  switch (kind) {
    case 'ip':
      return new IpSet(texts.map((t) => must(parseCidr(t) ?? cidrError(t)!, t))) as ListMatchers[K];
    case 'domain':
      return new Set(texts.map((t) => canonicalDomain(t.trim()))) as ListMatchers[K];
    case 'domainPattern': {
      const exact = new Set<string>();
      const suffixes: string[] = [];
      for (const t of texts) {
        const d = canonicalDomain(t.trim());
        if (d.startsWith('.')) suffixes.push(d);
        else exact.add(d);
      }
      return ((name: string) => exact.has(name) || suffixes.some((s) => name.endsWith(s) && name.length > s.length)) as ListMatchers[K];
    }
    case 'host':
      return anyOf(texts.map((t) => must(compileHostPattern(t), t))) as ListMatchers[K];
    case 'address':
      return anyOf(texts.map((t) => must(compileAddressPattern(t), t))) as ListMatchers[K];
    case 'user':
      return anyOf(texts.map((t) => must(compileUserPattern(t), t))) as ListMatchers[K];
  }
  throw new Error(`unknown list kind ${String(kind)}`);
}

export interface DynamicListOptions {
  configDir: string;
  reloadInterval: number;
  log: Logger;
  /** Where the list is in the options, for messages: "rules[2].client". */
  where: string;
  /** Called with every entry after the first load and after each reload. */
  onEntries?: (entries: string[]) => void;
  now?: () => number;
}

/** A list whose matcher follows its files. */
export class DynamicList<K extends ListKind> {
  private readonly inline: string[];
  private readonly files: WatchedFile<string[]>[];
  private matcher: ListMatchers[K];
  private versions: string;
  /** True when no file feeds this list: the matcher never changes. */
  readonly isStatic: boolean;

  private constructor(
    readonly kind: K,
    entries: readonly ListEntry[],
    private readonly options: DynamicListOptions,
  ) {
    this.inline = entries.filter((e): e is string => typeof e === 'string').map((e) => e.trim());
    this.files = entries
      .filter((e): e is { file: string } => typeof e !== 'string')
      .map(
        (e) =>
          new WatchedFile<string[]>({
            path: resolvePath(options.configDir, e.file),
            reloadInterval: options.reloadInterval,
            log: options.log,
            parse: (text, path) => parseListFile(kind, text, path),
            ...(options.now ? { now: options.now } : {}),
          }),
      );
    this.isStatic = this.files.length === 0;
    this.matcher = compileEntries(kind, this.inline);
    this.versions = '';
  }

  /** Build the list and load its files (errors name the file and line). */
  static async create<K extends ListKind>(kind: K, entries: readonly ListEntry[] | undefined, options: DynamicListOptions): Promise<DynamicList<K>> {
    const list = new DynamicList(kind, entries ?? [], options);
    for (const file of list.files) {
      try {
        await file.load();
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        throw new Error(`${options.where}: ${why}`);
      }
    }
    if (!list.isStatic) list.rebuild(list.files.map((f) => f.current));
    else list.options.onEntries?.(list.inline);
    return list;
  }

  /** The current matcher (files re-checked as needed). */
  async get(): Promise<ListMatchers[K]> {
    if (this.isStatic) return this.matcher;
    const contents = await Promise.all(this.files.map((f) => f.get()));
    const versions = this.files.map((f) => f.version).join(',');
    if (versions !== this.versions) this.rebuild(contents);
    return this.matcher;
  }

  private rebuild(contents: string[][]): void {
    const all = [...this.inline];
    for (const c of contents) all.push(...c);
    this.matcher = compileEntries(this.kind, all);
    this.versions = this.files.map((f) => f.version).join(',');
    this.options.onEntries?.(all);
  }
}

function parseListFile(kind: ListKind, text: string, path: string): string[] {
  const entries: string[] = [];
  for (const { text: entry, line } of splitListFile(text)) {
    const error = entryError(kind, entry);
    if (error) throw new FileError(path, line, error);
    entries.push(entry);
  }
  return entries;
}
