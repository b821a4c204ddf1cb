/**
 * Password hashes for SMTP AUTH user stores (plugin-acl's users file, `mailgate passwd`).
 *
 * The format is PHC-like: `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` with salt and hash in
 * unpadded standard base64 (the PHC string format). `ln` is log2 of scrypt's cost N.
 * Plain-text passwords are never stored or accepted: `verifyPassword` answers false for
 * anything that is not a hash it knows. bcrypt (`$2a$`, `$2b$`, `$2y$`, from htpasswd)
 * is recognised by `passwordHashScheme` but verified by the plugin that needs it
 * (plugin-acl uses bcryptjs); the core answers false for it.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export type PasswordHashScheme = 'scrypt' | 'bcrypt' | 'unknown';

/** Defaults of new hashes: N = 2^15, r = 8, p = 1 (32 MiB, tens of ms), 16-byte salt, 32-byte key. */
const DEFAULT_LN = 15;
const DEFAULT_R = 8;
const DEFAULT_P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/** Bounds for parameters read from a stored hash, so a hostile or corrupt file cannot ask for gigabytes. */
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY = 1024 ** 3;

const SCRYPT_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]{11,}={0,2})\$([A-Za-z0-9+/]{22,}={0,2})$/;
const BCRYPT_RE = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

interface ScryptParams {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** Which scheme a stored hash uses; 'unknown' for anything else (including plain text). */
export function passwordHashScheme(hash: string): PasswordHashScheme {
  if (typeof hash !== 'string') return 'unknown';
  if (parseScrypt(hash)) return 'scrypt';
  if (BCRYPT_RE.test(hash)) return 'bcrypt';
  return 'unknown';
}

/** Hash a password with scrypt and a fresh random salt. */
export async function hashPassword(password: string, options: { ln?: number; r?: number; p?: number } = {}): Promise<string> {
  if (typeof password !== 'string') throw new TypeError('hashPassword: password must be a string');
  const ln = options.ln ?? DEFAULT_LN;
  const r = options.r ?? DEFAULT_R;
  const p = options.p ?? DEFAULT_P;
  if (!validParams(ln, r, p)) throw new RangeError(`hashPassword: unsupported scrypt parameters ln=${ln},r=${r},p=${p}`);
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, ln, r, p);
  return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
}

/**
 * True if `password` matches `hash`. Constant-time comparison of the derived key; false
 * (never an exception) for a malformed hash, a scheme the core does not verify (bcrypt)
 * or plain text.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (typeof password !== 'string' || typeof hash !== 'string') return false;
  const parsed = parseScrypt(hash);
  if (!parsed) return false;
  let key: Buffer;
  try {
    key = await scrypt(password, parsed.salt, parsed.hash.length, parsed.ln, parsed.r, parsed.p);
  } catch {
    return false;
  }
  return key.length === parsed.hash.length && timingSafeEqual(key, parsed.hash);
}

function parseScrypt(hash: string): ScryptParams | undefined {
  const m = SCRYPT_RE.exec(hash);
  if (!m) return undefined;
  const ln = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  if (!validParams(ln, r, p)) return undefined;
  const salt = Buffer.from(m[4]!, 'base64');
  const key = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || key.length < 16 || key.length > 128) return undefined;
  return { ln, r, p, salt, hash: key };
}

function validParams(ln: number, r: number, p: number): boolean {
  return (
    Number.isInteger(ln) && ln >= 1 && ln <= MAX_LN &&
    Number.isInteger(r) && r >= 1 && r <= MAX_R &&
    Number.isInteger(p) && p >= 1 && p <= MAX_P &&
    memoryOf(ln, r) <= MAX_MEMORY
  );
}

function memoryOf(ln: number, r: number): number {
  return 128 * r * 2 ** ln;
}

function scrypt(password: string, salt: Buffer, keylen: number, ln: number, r: number, p: number): Promise<Buffer> {
  // node refuses N*r*128 >= maxmem (default 32 MiB): give it room for the parameters asked for.
  const options: ScryptOptions = { N: 2 ** ln, r, p, maxmem: memoryOf(ln, r) * 2 + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function b64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}
