/** Configuration problems as reported to the admin: what, where (key path, file, line, column). */
import type { ConfigSource } from './load.js';

export interface ConfigIssue {
  path: (string | number)[];
  /** The path as written in messages, e.g. `plugins[2].with.localDomains[0]`; '' for the whole file. */
  pathText: string;
  message: string;
  line?: number;
  column?: number;
  file?: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

export function formatPath(path: readonly (string | number)[]): string {
  let text = '';
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else if (IDENTIFIER.test(key)) text += text === '' ? key : `.${key}`;
    else text += `[${JSON.stringify(key)}]`;
  }
  return text;
}

/** One line per issue: `file:line:column: path: message`, leaving out the parts not known. */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map(formatIssue).join('\n');
}

function formatIssue(issue: ConfigIssue): string {
  const where = [issue.file, issue.line, issue.line === undefined ? undefined : issue.column].filter((part) => part !== undefined);
  const parts = [where.join(':'), issue.pathText, issue.message].filter((part) => part !== '');
  return parts.join(': ');
}

/** Thrown when the configuration is invalid; `message` lists every issue, one per line. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  readonly file?: string;
  /**
   * Set when the core config was invalid: the `plugins:` list as written and where it
   * came from, whose options nobody has checked yet (the loader does, to report all).
   */
  unchecked?: { plugins: unknown; source: ConfigSource };

  constructor(issues: ConfigIssue[], file?: string) {
    super(formatIssues(issues));
    this.name = 'ConfigError';
    this.issues = issues;
    if (file !== undefined) this.file = file;
  }
}

/** Order issues as they appear in the file, so the first one to fix comes first. */
export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => {
      const byLine = (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity);
      if (byLine !== 0 && !Number.isNaN(byLine)) return byLine;
      const byColumn = (a.issue.column ?? 0) - (b.issue.column ?? 0);
      return byColumn !== 0 ? byColumn : a.index - b.index;
    })
    .map(({ issue }) => issue);
}
