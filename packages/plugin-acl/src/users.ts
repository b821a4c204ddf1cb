/**
 * The SMTP AUTH user store: a users file in YAML or htpasswd style, passwords hashed
 * with scrypt (`mailgate passwd`) or bcrypt (`htpasswd -B`), never in plain text.
 *
 * YAML:
 *   users:
 *     - name: alice
 *       password: $scrypt$ln=15,r=8,p=1$…$…
 *       addresses: [alice@example.com, alice.smith@example.com]
 *
 * htpasswd style, one user a line, optional third field of comma-separated addresses:
 *   alice:$2y$10$…
 *   bob:$scrypt$ln=15,r=8,p=1$…$…:bob@example.com,@sales.example.com
 */
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { Logger } from '@mailgate/core';
import { FileError, WatchedFile } from './files.js';
import { anyOf, canonicalUser, compileAddressPattern, type AddressPredicate } from './patterns.js';
import { describeUnsupportedHash, hashPassword, passwordHashScheme, verifyPassword } from './password.js';

export interface UserEntry {
  /** The name as written in the file. */
  name: string;
  hash: string;
  scheme: 'scrypt' | 'bcrypt';
  /** Address patterns the user may send as (see the README); empty = none. */
  addresses: string[];
  owns: AddressPredicate;
  line: number;
}

export interface UserTable {
  /** By canonical (ASCII-lower-cased) name. */
  users: Map<string, UserEntry>;
  /** Cost parameters of the first user's hash: unknown users are checked against a hash like it. */
  template: string | undefined;
}

export type UsersFormat = 'auto' | 'yaml' | 'htpasswd';

// eslint-disable-next-line no-control-regex
const BAD_NAME = /[\x00-\x20\x7f:]/;

/** Parse a users file; throws FileError naming the file and line of the first problem. */
export function parseUsersFile(text: string, path: string, format: UsersFormat = 'auto'): UserTable {
  const yaml = format === 'yaml' || (format === 'auto' && (/\.ya?ml$/i.test(path) || /^\s*users\s*:/m.test(text)));
  const entries = yaml ? parseYamlUsers(text, path) : parseHtpasswd(text, path);
  const users = new Map<string, UserEntry>();
  for (const entry of entries) {
    const key = canonicalUser(entry.name);
    const previous = users.get(key);
    if (previous) throw new FileError(path, entry.line, `user "${entry.name}" is already defined on line ${previous.line}`);
    users.set(key, entry);
  }
  const first = entries[0];
  return { users, template: first ? costOf(first.hash) : undefined };
}

interface RawUser {
  name: string;
  password: string;
  addresses: string[] | undefined;
  line: number;
  passwordLine: number;
}

function makeEntry(raw: RawUser, path: string): UserEntry {
  if (raw.name === '' || BAD_NAME.test(raw.name)) {
    throw new FileError(path, raw.line, `invalid user name ${JSON.stringify(raw.name)} (no spaces, colons or control characters)`);
  }
  const scheme = passwordHashScheme(raw.password);
  if (scheme === 'unknown') {
    // Never echo the value: it may be someone's password.
    const known = describeUnsupportedHash(raw.password);
    const why = known
      ? `the password hash scheme ${known} is not supported; use a scrypt hash ("mailgate passwd") or bcrypt ("htpasswd -B")`
      : 'the password is not a scrypt or bcrypt hash; plain-text passwords are refused: create a hash with "mailgate passwd" (scrypt) or "htpasswd -B" (bcrypt)';
    throw new FileError(path, raw.passwordLine, `user "${raw.name}": ${why}`);
  }
  const addresses = raw.addresses ?? (raw.name.includes('@') ? [raw.name] : []);
  const predicates = addresses.map((a) => {
    const p = compileAddressPattern(a);
    if (typeof p === 'string') throw new FileError(path, raw.line, `user "${raw.name}": address ${p}`);
    return p;
  });
  return { name: raw.name, hash: raw.password, scheme, addresses, owns: anyOf(predicates), line: raw.line };
}

function parseHtpasswd(text: string, path: string): UserEntry[] {
  const out: UserEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) return;
    const parts = t.split(':');
    if (parts.length < 2 || parts.length > 3) {
      throw new FileError(path, line, 'expected "name:password-hash" or "name:password-hash:address,address"');
    }
    const [name = '', password = '', addressField] = parts;
    const addresses = addressField === undefined ? undefined : addressField.split(',').map((a) => a.trim()).filter((a) => a !== '');
    out.push(makeEntry({ name, password, addresses, line, passwordLine: line }, path));
  });
  return out;
}

function parseYamlUsers(text: string, path: string): UserEntry[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (node: YamlNode | null | undefined): number => (node?.range ? lineCounter.linePos(node.range[0]).line : 1);
  const firstError = doc.errors[0];
  if (firstError) {
    const line = firstError.pos ? lineCounter.linePos(firstError.pos[0]).line : undefined;
    throw new FileError(path, line, `YAML syntax error: ${firstError.message.split('\n')[0]}`);
  }
  const root = doc.contents;
  if (root === null) return [];
  if (!isMap(root)) throw new FileError(path, lineOf(root), 'expected a mapping with a "users" list');
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (key !== 'users') throw new FileError(path, lineOf(pair.key as YamlNode), `unknown key ${JSON.stringify(key)} (expected "users")`);
  }
  const list = root.get('users', true);
  if (list === undefined || (isScalar(list) && list.value === null)) return [];
  if (!isSeq(list)) throw new FileError(path, lineOf(list as YamlNode), '"users" must be a list');
  const out: UserEntry[] = [];
  for (const item of list.items) {
    const node = item as YamlNode;
    const line = lineOf(node);
    if (!isMap(item)) throw new FileError(path, line, 'each user must be a mapping with name and password');
    let name: string | undefined;
    let password: string | undefined;
    let passwordLine = line;
    let addresses: string[] | undefined;
    for (const pair of item.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const value = pair.value as YamlNode | null;
      const at = lineOf(value ?? (pair.key as YamlNode));
      switch (key) {
        case 'name':
          if (!isScalar(value) || typeof value.value !== 'string') throw new FileError(path, at, 'name must be a string');
          name = value.value;
          break;
        case 'password':
          // A number or boolean here is a plain-text password YAML happened to type.
          if (!isScalar(value) || value.value === null) throw new FileError(path, at, 'password must be a hash string');
          password = String(value.value);
          passwordLine = at;
          break;
        case 'addresses':
          if (isScalar(value) && typeof value.value === 'string') addresses = [value.value];
          else if (isSeq(value) && value.items.every((i) => isScalar(i) && typeof i.value === 'string')) {
            addresses = value.items.map((i) => String((i as { value: unknown }).value));
          } else throw new FileError(path, at, 'addresses must be a list of address patterns');
          break;
        default:
          throw new FileError(path, lineOf(pair.key as YamlNode), `unknown key ${JSON.stringify(key)} (expected name, password, addresses)`);
      }
    }
    if (name === undefined) throw new FileError(path, line, 'user without a name');
    if (password === undefined) throw new FileError(path, line, `user "${name}" has no password`);
    out.push(makeEntry({ name, password, addresses, line, passwordLine }, path));
  }
  return out;
}

/** The cost part of a hash: `$scrypt$ln=15,r=8,p=1` or `$2b$10`. */
function costOf(hash: string): string | undefined {
  const scrypt = /^(\$scrypt\$ln=\d+,r=\d+,p=\d+)\$/.exec(hash);
  if (scrypt) return scrypt[1];
  const bc = /^\$2[aby]\$(\d{2})\$/.exec(hash);
  return bc ? `$2b$${bc[1]}` : undefined;
}

/**
 * Credentials checks against a (reloaded) users file. An unknown user costs the same
 * as a known one: the password is checked against a hash of the same scheme and cost
 * as the file's first user, so response times do not tell which names exist.
 */
export class UserStore {
  private readonly dummies = new Map<string, Promise<string>>();

  constructor(private readonly file: WatchedFile<UserTable>) {}

  static async open(options: { path: string; format: UsersFormat; reloadInterval: number; log: Logger; now?: () => number }): Promise<UserStore> {
    let store: UserStore | undefined;
    const file = new WatchedFile<UserTable>({
      path: options.path,
      reloadInterval: options.reloadInterval,
      log: options.log,
      parse: (text, path) => parseUsersFile(text, path, options.format),
      onReload: (table) => store?.prepare(table),
      ...(options.now ? { now: options.now } : {}),
    });
    await file.load();
    store = new UserStore(file);
    store.prepare(file.current);
    return store;
  }

  /** The user entry (current file), if any. */
  async find(name: string): Promise<UserEntry | undefined> {
    return (await this.file.get()).users.get(canonicalUser(name));
  }

  /** The user if `password` is theirs, else undefined. */
  async verify(name: string, password: string): Promise<UserEntry | undefined> {
    const table = await this.file.get();
    const user = table.users.get(canonicalUser(name));
    const hash = user?.hash ?? (await this.dummy(table.template));
    const ok = await verifyPassword(password, hash);
    return ok && user ? user : undefined;
  }

  /** Make the dummy hash for a file's cost ahead of the first unknown user. */
  private prepare(table: UserTable): void {
    void this.dummy(table.template).catch(() => undefined);
  }

  private dummy(template: string | undefined): Promise<string> {
    const key = template ?? '$scrypt$ln=15,r=8,p=1';
    let pending = this.dummies.get(key);
    if (!pending) {
      const secret = randomBytes(18).toString('base64');
      const bc = /^\$2b\$(\d{2})$/.exec(key);
      const sc = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)$/.exec(key);
      pending = bc
        ? bcrypt.hash(secret, Number(bc[1]))
        : hashPassword(secret, sc ? { ln: Number(sc[1]), r: Number(sc[2]), p: Number(sc[3]) } : {});
      this.dummies.set(key, pending);
    }
    return pending;
  }
}
