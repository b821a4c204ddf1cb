import { describe, expect, it } from 'vitest';
import { hashPassword, passwordHashScheme, verifyPassword } from '../../src/auth/password.js';

// Cheap parameters keep the suite fast; the default (ln=15) is checked once.
const fast = { ln: 10 };

describe('password hashes', () => {
  it('hashes with scrypt in a PHC-like string and verifies it (default parameters)', async () => {
    const hash = await hashPassword('correct horse battery staple');
    expect(hash).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(passwordHashScheme(hash)).toBe('scrypt');
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('correct horse battery stapler', hash)).toBe(false);
  });

  it('uses a fresh salt each time', async () => {
    const [a, b] = await Promise.all([hashPassword('pw', fast), hashPassword('pw', fast)]);
    expect(a).not.toBe(b);
    expect(await verifyPassword('pw', a)).toBe(true);
    expect(await verifyPassword('pw', b)).toBe(true);
  });

  it('verifies the empty password and non-ASCII passwords (NFC-normalized)', async () => {
    expect(await verifyPassword('', await hashPassword('', fast))).toBe(true);
    const hash = await hashPassword('caf\u00e9', fast);
    expect(await verifyPassword('cafe\u0301', hash)).toBe(true);
    expect(await verifyPassword('cafe', hash)).toBe(false);
  });

  it('recognises bcrypt but does not verify it in the core', async () => {
    const bcrypt = '$2y$05$Ws5.eBqZ.jXjXQ3X7J6xE.3UqK5R0l2mNwKQhUz2VvG6mXh5xk8hK';
    expect(passwordHashScheme(bcrypt)).toBe('bcrypt');
    expect(passwordHashScheme(bcrypt.replace('$2y$', '$2b$'))).toBe('bcrypt');
    expect(passwordHashScheme(bcrypt.replace('$2y$', '$2a$'))).toBe('bcrypt');
    expect(await verifyPassword('anything', bcrypt)).toBe(false);
  });

  it('answers false / unknown for plain text, other schemes and malformed hashes', async () => {
    const good = await hashPassword('pw', fast);
    const bad = [
      'pw',
      '',
      '$apr1$abcdefgh$0123456789abcdefghijkl',
      '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=',
      good.replace('$scrypt$', '$scrypt2$'),
      good.replace('ln=10', 'ln=40'), // cost out of bounds
      good.replace('r=8', 'r=0'),
      good.slice(0, good.lastIndexOf('$') + 10), // truncated key
      `${good}$extra`,
    ];
    for (const hash of bad) {
      expect(passwordHashScheme(hash), hash).toBe('unknown');
      expect(await verifyPassword('pw', hash), hash).toBe(false);
    }
    expect(await verifyPassword(undefined as unknown as string, good)).toBe(false);
  });

  it('refuses parameters it would not verify', async () => {
    await expect(hashPassword('pw', { ln: 30 })).rejects.toThrow(RangeError);
  });
});
