/**
 * One message as header and body rules read it, computed lazily and once per message:
 * a case-insensitive header index, the body text, the URLs. Every view is bounded so a
 * hostile message (a header repeated 10 000 times, megabytes of text) costs the same as
 * a large ordinary one: rules never see more than MAX_RULE_TEXT characters at once.
 */
import type { RuleInput } from './rules.js';

/** Body rules match against at most this much text (SpamAssassin: body_part_scan_size 50 000). */
export const MAX_RULE_TEXT = 256 * 1024;
/** URLs a uri rule looks at, and how much of each. */
const MAX_URLS = 1_000;
const MAX_URL_LENGTH = 4_096;

export class RuleContext {
  private index: Map<string, string[]> | undefined;
  private readonly joined = new Map<string, string>();
  private all: string | undefined;
  private bodyText: string | undefined;
  private urlList: string[] | undefined;
  private readonly memos = new Map<string, unknown>();

  constructor(
    readonly input: RuleInput,
    /** ms since the epoch: the time the message is received */
    readonly now: number,
  ) {}

  /** The values of every field named `name` (case-insensitive), in order; bounded in total size. */
  values(name: string): readonly string[] {
    if (!this.index) {
      const index = new Map<string, string[]>();
      const sizes = new Map<string, number>();
      for (const field of this.input.headers) {
        const key = field.name.toLowerCase();
        const size = sizes.get(key) ?? 0;
        if (size > MAX_RULE_TEXT) continue; // enough of this field for any rule
        const value = field.value.length > MAX_RULE_TEXT ? field.value.slice(0, MAX_RULE_TEXT) : field.value;
        sizes.set(key, size + value.length + 1);
        let list = index.get(key);
        if (!list) index.set(key, (list = []));
        list.push(value);
      }
      this.index = index;
    }
    return this.index.get(name.toLowerCase()) ?? [];
  }

  has(name: string): boolean {
    return this.values(name).length > 0;
  }

  /** The first value of a field, or undefined. */
  first(name: string): string | undefined {
    return this.values(name)[0];
  }

  /** Every value of a field joined by newlines (SpamAssassin's view of a repeated header); '' when absent. */
  header(name: string): string {
    const key = name.toLowerCase();
    let text = this.joined.get(key);
    if (text === undefined) {
      text = this.values(key).join('\n').slice(0, MAX_RULE_TEXT);
      this.joined.set(key, text);
    }
    return text;
  }

  /** The whole header as `Name: value` lines. */
  allHeaders(): string {
    if (this.all === undefined) {
      let text = '';
      for (const field of this.input.headers) {
        text += `${field.name}: ${field.value}\n`;
        if (text.length >= MAX_RULE_TEXT) break;
      }
      this.all = text.slice(0, MAX_RULE_TEXT);
    }
    return this.all;
  }

  /** What body rules see: the Subject as the first line, then the text (as SpamAssassin's body rules). */
  body(): string {
    this.bodyText ??= `${this.input.subject.slice(0, 1_000)}\n${this.input.text.slice(0, MAX_RULE_TEXT)}`.slice(0, MAX_RULE_TEXT);
    return this.bodyText;
  }

  /** `compute()` once per message under `key`: for what several rules derive from the same input. */
  memo<T>(key: string, compute: () => T): T {
    if (this.memos.has(key)) return this.memos.get(key) as T;
    const value = compute();
    this.memos.set(key, value);
    return value;
  }

  urls(): readonly string[] {
    this.urlList ??= this.input.urls.slice(0, MAX_URLS).map((u) => (u.length > MAX_URL_LENGTH ? u.slice(0, MAX_URL_LENGTH) : u));
    return this.urlList;
  }
}
