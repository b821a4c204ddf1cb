/**
 * Password helpers of the ACL's user store. scrypt hashes (what `mailgate passwd`
 * writes) are verified by the core; bcrypt hashes (`$2a$`, `$2b$`, `$2y$`, as written
 * by `htpasswd -B`) by bcryptjs. Anything else, plain text included, never verifies.
 */
import bcrypt from 'bcryptjs';
import { hashPassword, passwordHashScheme, verifyPassword as verifyCorePassword } from '@mailgate/core';

export { hashPassword, passwordHashScheme };

/** True if `password` matches a scrypt or bcrypt `hash`; false for anything else (never throws). */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (typeof password !== 'string' || typeof hash !== 'string') return false;
  switch (passwordHashScheme(hash)) {
    case 'scrypt':
      return verifyCorePassword(password, hash);
    case 'bcrypt':
      // bcrypt reads at most 72 octets; bcryptjs compares in constant time.
      try {
        return await bcrypt.compare(password, hash);
      } catch {
        return false;
      }
    default:
      return false;
  }
}

/** Recognised but unsupported schemes, to say what a hash is when refusing it. */
export function describeUnsupportedHash(hash: string): string | undefined {
  if (hash.startsWith('$apr1$')) return 'Apache MD5 ($apr1$)';
  if (hash.startsWith('$1$')) return 'MD5-crypt ($1$)';
  if (hash.startsWith('$5$')) return 'SHA-256-crypt ($5$)';
  if (hash.startsWith('$6$')) return 'SHA-512-crypt ($6$)';
  if (hash.startsWith('$y$')) return 'yescrypt ($y$)';
  if (hash.startsWith('$argon2')) return 'Argon2';
  if (hash.startsWith('{SHA}')) return 'unsalted SHA-1 ({SHA})';
  if (hash.startsWith('{SSHA}')) return 'salted SHA-1 ({SSHA})';
  if (hash.startsWith('{PLAIN}') || hash.startsWith('{CLEARTEXT}')) return 'plain text';
  if (hash.startsWith('$2') || hash.startsWith('$scrypt$')) return 'a malformed bcrypt or scrypt hash';
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return 'DES crypt (or a 13-character plain-text password)';
  return undefined;
}
