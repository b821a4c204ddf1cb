/**
 * The YAML side of config loading: parsing with positions, ${VAR} substitution on the
 * parsed scalars, and mapping a key path back to a line and column.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type Pair, Scalar } from 'yaml';

export type ConfigPath = readonly (string | number)[];
export interface Position {
  line: number;
  column: number;
}
/** A problem found before schema validation (syntax, variables); `offset` is into the text. */
export interface YamlProblem {
  path: (string | number)[];
  message: string;
  offset?: number;
}

export interface ParsedYaml {
  doc: Document.Parsed;
  lineCounter: LineCounter;
  problems: YamlProblem[];
}

export function parseYaml(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  // uniqueKeys (the default) makes a duplicate key an error: with "last one wins" a
  // forgotten earlier entry would silently change behaviour.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: YamlProblem[] = [];
  const lines = new Set<number>();
  for (const error of doc.errors) {
    // One syntax slip often cascades into several errors on the same line; the first says it.
    const { line } = lineCounter.linePos(error.pos[0]);
    if (lines.has(line)) continue;
    lines.add(line);
    let message = yamlMessage(error.code, error.message);
    // `{ port: ${PORT} }` is a classic: in flow style, "{" is syntax, so the value needs quotes.
    const lineStart = lineCounter.lineStarts[line - 1] ?? 0;
    const lineText = text.slice(lineStart, text.indexOf('\n', lineStart) >>> 0);
    if (lineText.includes('${')) message += ' (quote values that use ${VAR} inside { } or [ ])';
    problems.push({ path: [], message, offset: error.pos[0] });
  }
  return { doc, lineCounter, problems };
}

function yamlMessage(code: string, message: string): string {
  const text = message.replace(/\s+/g, ' ').trim();
  if (code === 'DUPLICATE_KEY') return 'duplicate key (each key may appear only once in a mapping)';
  return `invalid YAML: ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
}

// `$${` is a literal `${`; `${NAME}` and `${NAME:-default}` are references; a lone `${` is unterminated.
const REFERENCE = /\$\$\{|\$\{([^{}]*)\}|\$\{/g;
const EXPRESSION = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/**
 * Replaces ${VAR} in every string value of the document, in place. Working on parsed
 * scalars (not the raw text) means a variable's value can never add keys or structure.
 */
export function substituteEnv(doc: Document.Parsed, env: Record<string, string | undefined>): YamlProblem[] {
  const problems: YamlProblem[] = [];
  const visit = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) visit(pair.value, [...path, keyOf(pair)]);
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => visit(item, [...path, index]));
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      substituteScalar(node, env, path, problems);
    }
  };
  visit(doc.contents, []);
  return problems;
}

function substituteScalar(node: Scalar, env: Record<string, string | undefined>, path: (string | number)[], problems: YamlProblem[]): void {
  const text = node.value as string;
  const problem = (message: string) => problems.push({ path, message, offset: node.range?.[0] });
  let failed = false;
  const result = text.replace(REFERENCE, (match: string, expression: string | undefined) => {
    if (match === '$${') return '${';
    if (expression === undefined) {
      failed = true;
      problem('unterminated "${" (nested references are not supported; write "$${" for a literal "${")');
      return match;
    }
    const parsed = EXPRESSION.exec(expression);
    if (!parsed) {
      failed = true;
      problem(`invalid variable reference "${match}" (expected \${NAME} or \${NAME:-default})`);
      return match;
    }
    const name = parsed[1] as string;
    const fallback = parsed[2];
    const value = env[name];
    if (fallback !== undefined) return value === undefined || value === '' ? fallback : value;
    if (value === undefined) {
      failed = true;
      problem(`environment variable ${name} is not set (use \${${name}:-default} to give a default)`);
      return match;
    }
    return value;
  });
  if (failed) return;
  // An unquoted `port: ${PORT}` should be the number 2525, as if written literally; quoted
  // and block scalars, and explicitly tagged ones, stay strings.
  node.value = node.type === Scalar.PLAIN && !node.tag ? retype(result) : result;
}

/** YAML 1.2 core-schema typing of a plain scalar, limited to numbers and booleans. */
function retype(text: string): string | number | boolean {
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n) && (!Number.isInteger(n) || Number.isSafeInteger(n))) return n;
  }
  return text;
}

function keyOf(pair: Pair): string | number {
  const key: unknown = isScalar(pair.key) ? pair.key.value : pair.key;
  return typeof key === 'number' ? key : String(key);
}

function findPair(node: unknown, key: string | number): Pair | undefined {
  if (!isMap(node)) return undefined;
  return node.items.find((pair) => String(keyOf(pair)) === String(key));
}

function childOf(node: unknown, key: string | number): unknown {
  if (isSeq(node)) return typeof key === 'number' ? node.items[key] : undefined;
  return findPair(node, key)?.value ?? undefined;
}

/**
 * Position of the value at `path`, or of its key when `key` is set (for "unknown key")
 * or when the value is empty (`idleTimeout:` with nothing after it). A path that does
 * not exist (a missing required key) points at the closest existing ancestor.
 */
export function createLocator(doc: Document.Parsed, lineCounter: LineCounter) {
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  return (path: ConfigPath, options: { key?: boolean } = {}): Position | undefined => {
    if (doc.contents === null) return undefined;
    let node: unknown = doc.contents;
    let depth = 0;
    // Aliases are not followed: an error inside one points at the alias itself.
    for (; depth < path.length && !isAlias(node); depth++) {
      const next = childOf(node, path[depth] as string | number);
      if (next === undefined || next === null) break;
      node = next;
    }
    if (depth === path.length && depth > 0) {
      const pair = findPair(nodeAt(doc, path.slice(0, -1)), path[depth - 1] as string | number);
      const emptyValue = isScalar(node) && node.value === null && node.source === '';
      if (pair && (options.key || emptyValue)) return rangeStart(pair.key, at);
    }
    // For a missing key, `node` is the closest existing ancestor (the parent mapping).
    return rangeStart(node, at);
  };
}

function nodeAt(doc: Document.Parsed, path: ConfigPath): unknown {
  let node: unknown = doc.contents;
  for (const key of path) {
    node = childOf(node, key);
    if (node === undefined || node === null) return undefined;
  }
  return node;
}

function isNode(value: unknown): value is Node {
  return isScalar(value) || isMap(value) || isSeq(value) || isAlias(value);
}

function rangeStart(node: unknown, at: (offset: number) => Position): Position | undefined {
  if (!isNode(node) || !node.range) return undefined;
  return at(node.range[0]);
}
