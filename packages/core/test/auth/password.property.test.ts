/**
 * Property tests of the password hashes of the AUTH user stores. A users file is read
 * from disk and may be corrupt or hostile: whatever a stored hash string holds,
 * `passwordHashScheme` names it without throwing and `verifyPassword` resolves false
 * (never rejects, never says yes to a wrong password). Hashing is slow on purpose, so
 * the round trips use cheap parameters and few runs; the generators of hostile hashes
 * never produce costly parameters that parse (ln > 6 only where it is out of bounds).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashPassword, passwordHashScheme, verifyPassword } from '../../src/auth/password.js';

const cheap = { ln: 4, r: 1, p: 1 };
const password = fc.oneof(fc.string({ maxLength: 20 }), fc.fullUnicodeString({ maxLength: 12 }), fc.string16bits({ maxLength: 8 }));
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** Text that looks more or less like a stored hash. */
const base64ish = fc.array(fc.constantFrom(...'ABCXYZabcxyz0189+/=.$_-'.split('')), { maxLength: 60 }).map((cs) => cs.join(''));
const hostileHash: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string16bits({ maxLength: 40 }),
  fc.constantFrom('', '$', '$scrypt$', '$scrypt$ln=$$', '$2y$', '{SHA}', '$apr1$x$y', 'plain-text-password', '$scrypt$ln=1,r=1,p=1$$'),
  {
    weight: 6,
    arbitrary: fc
      .record({
        scheme: fc.oneof({ weight: 12, arbitrary: fc.constant('scrypt') }, fc.constantFrom('SCRYPT', 'scrypt2', '2b', 'argon2id')),
        // mostly in bounds but cheap, else out of bounds or not a number (never an expensive valid one)
        ln: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 1, max: 6 }) }, fc.integer({ min: 21, max: 99 }), fc.constantFrom(0, '', 'x', '-1', '1.5', '007')),
        r: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 1, max: 4 }) }, fc.integer({ min: 33, max: 999 }), fc.constantFrom(0, '', '-1', '1e3')),
        p: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 1, max: 4 }) }, fc.integer({ min: 17, max: 999 }), fc.constantFrom(0, '', '0x1')),
        salt: fc.oneof({ weight: 12, arbitrary: fc.uint8Array({ minLength: 6, maxLength: 24 }).map(b64) }, base64ish),
        key: fc.oneof(
          { weight: 12, arbitrary: fc.uint8Array({ minLength: 10, maxLength: 140 }).map((b) => b64(b).replace(/=+$/, '')) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 140 }).map(b64) },
          base64ish,
        ),
        tail: fc.oneof({ weight: 12, arbitrary: fc.constant('') }, fc.constantFrom('$', '$extra', '\n', ' ')),
      })
      .map(({ scheme, ln, r, p, salt, key, tail }) => `$${scheme}$ln=${ln},r=${r},p=${p}$${salt}$${key}${tail}`),
  },
);

describe('stored hashes of unknown or corrupt format', () => {
  it('passwordHashScheme never throws and says scrypt only for the PHC-like scrypt form', () => {
    fc.assert(
      fc.property(hostileHash, (hash) => {
        const scheme = passwordHashScheme(hash);
        expect(['scrypt', 'bcrypt', 'unknown']).toContain(scheme);
        if (scheme === 'scrypt') expect(hash).toMatch(/^\$scrypt\$ln=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
        if (scheme === 'bcrypt') expect(hash).toMatch(/^\$2[aby]\$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('verifyPassword resolves false for every one of them, whatever the password', async () => {
    await fc.assert(
      fc.asyncProperty(hostileHash, password, async (hash, pw) => {
        await expect(verifyPassword(pw, hash)).resolves.toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('non-strings are refused, not thrown on', async () => {
    const junk = fc.constantFrom<unknown>(undefined, null, 42, {}, [], Symbol('x'), Buffer.from('$scrypt$'));
    await fc.assert(
      fc.asyncProperty(junk, junk, async (a, b) => {
        expect(passwordHashScheme(b as string)).toBe('unknown');
        await expect(verifyPassword(a as string, b as string)).resolves.toBe(false);
      }),
      { numRuns: 50 },
    );
  });
});

describe('hash → verify', () => {
  it('round-trips any password (NFC-normalized), and no other password verifies', async () => {
    await fc.assert(
      fc.asyncProperty(password, password, async (pw, other) => {
        const hash = await hashPassword(pw, cheap);
        expect(passwordHashScheme(hash)).toBe('scrypt');
        expect(await verifyPassword(pw, hash)).toBe(true);
        expect(await verifyPassword(pw.normalize('NFD'), hash)).toBe(true);
        if (other.normalize('NFC') !== pw.normalize('NFC')) expect(await verifyPassword(other, hash)).toBe(false);
      }),
      { numRuns: 20 },
    );
  });

  it('a hash with one byte of its salt or key changed no longer verifies', async () => {
    const pw = 'correct horse';
    const hash = await hashPassword(pw, cheap);
    const [, , params, salt, key] = hash.split('$') as [string, string, string, string, string];
    const rewrite = (b64text: string, at: number, xor: number): string => {
      const bytes = Buffer.from(b64text, 'base64');
      const i = at % bytes.length;
      bytes[i] = bytes[i]! ^ xor;
      return bytes.toString('base64').replace(/=+$/, '');
    };
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 255 }), async (inSalt, at, xor) => {
        const changed = inSalt ? `$scrypt$${params}$${rewrite(salt, at, xor)}$${key}` : `$scrypt$${params}$${salt}$${rewrite(key, at, xor)}`;
        expect(passwordHashScheme(changed)).toBe('scrypt');
        expect(await verifyPassword(pw, changed)).toBe(false);
      }),
      { numRuns: 40 },
    );
  });
});
