/**
 * Property tests of path safety: local parts, sub-address tags and domains become path
 * components below the Maildir root. Whatever a client sends, what is declared safe is
 * one plain component for node:path on POSIX and on Windows, with no "." / ".." / hidden
 * name, no separator even after Unicode normalization or case mapping, well-formed
 * UTF-8, at most 64 octets; for ASCII the verdict is exactly the documented rule.
 * Domains fold to a DNS name the core's resolver accepts as it is.
 */
import fc from 'fast-check';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeName } from '@mailgate/core';
import { foldDomain, isSafeFolderTag, unsafeComponent } from '../src/safety.js';

const ROOT = '/var/mail/example.test';

/** Characters that matter for paths, look-alikes, normalization traps and controls. */
const tricky = fc.constantFrom(
  '.', '..', '/', '\\', '\0', ' ', '\t', '\n', ':', '~', '-', '+', '=', '"', "'", '*', '?', '%2f',
  '\uff0f', '\u2215', '\u2044', '\u2024', '\uff0e', '\u3002', '\u0338', '\u00e9', 'e\u0301', '\u212a', '\u017f', '\u0130',
  '\u200b', '\u202e', '\ufeff', '\u00a0', '\u1100', '\u0663', '\ud83d\ude00', '\ud800', '\udc00', '\ue000', 'a', 'Z', '0',
);
const name = fc.oneof(
  fc.string({ maxLength: 70 }),
  fc.string16bits({ maxLength: 20 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.array(tricky, { maxLength: 10 }).map((p) => p.join('')),
);

/** The documented rule for ASCII names: RFC 5322 atext without "/", plus "."; no leading, trailing or doubled dot; 1 to 64 characters. */
const ASCII_SAFE = /^(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9!#$%&'*+\-=?^_`{|}~.]{1,64}$/;

/** One plain path component below `ROOT`, for POSIX and Windows path rules. */
function plainComponent(component: string): void {
  expect(path.posix.dirname(path.posix.join(ROOT, component))).toBe(ROOT);
  expect(path.posix.basename(path.posix.join(ROOT, component))).toBe(component);
  expect(path.win32.basename(component)).toBe(component);
  expect(component).not.toMatch(/^\.{1,2}$/);
}

describe('unsafeComponent', () => {
  it('never throws, and answers a reason or undefined', () => {
    fc.assert(
      fc.property(name, (n) => {
        const why = unsafeComponent(n);
        expect(why === undefined || (typeof why === 'string' && why.length > 0)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('what it calls safe is one plain, visible, normalized component, also after NFKC/NFKD and case mapping', () => {
    fc.assert(
      fc.property(name, (n) => {
        if (unsafeComponent(n) !== undefined) return;
        plainComponent(n);
        expect(n.startsWith('.')).toBe(false);
        expect(Buffer.byteLength(n, 'utf8')).toBeLessThanOrEqual(64);
        expect(Buffer.from(n, 'utf8').toString('utf8')).toBe(n); // no lone surrogate
        expect(n).not.toMatch(/[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Z}]/u);
        for (const variant of [n.normalize('NFKC'), n.normalize('NFKD'), n.toLowerCase(), n.toUpperCase()]) {
          expect(variant).not.toMatch(/[/\\\0]|\.\./);
        }
        expect(n.normalize('NFKC')).toBe(n);
      }),
      { numRuns: 3000 },
    );
  });

  it('on ASCII it is exactly the documented rule', () => {
    const ascii = fc.oneof(fc.string({ maxLength: 70 }), fc.array(fc.constantFrom('.', 'a', '/', '\\', ' ', '"', '~', '\0', '\x7f'), { maxLength: 8 }).map((p) => p.join('')));
    fc.assert(
      fc.property(ascii, (n) => {
        expect(unsafeComponent(n) === undefined).toBe(ASCII_SAFE.test(n));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isSafeFolderTag', () => {
  it('is exactly 1 to 64 ASCII letters, digits, "_" and "-", so ".tag" is one Maildir++ folder', () => {
    fc.assert(
      fc.property(name, (tag) => {
        const safe = isSafeFolderTag(tag);
        expect(safe).toBe(/^[A-Za-z0-9_-]{1,64}$/.test(tag));
        if (safe) plainComponent(`.${tag}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('foldDomain', () => {
  const domain = fc.oneof(
    fc.domain(),
    fc.domain().map((d) => d.toUpperCase()),
    fc.domain().map((d) => `${d}.`),
    fc.array(fc.constantFrom('ex\u00e4mple', 'b\u00fccher', '\u4f8b\u3048', 'xn--bcher-kva', '\uff45\uff58', 'a', 'a-b', '-a', 'a_b'), { minLength: 1, maxLength: 3 }).map((l) => `${l.join('.')}.test`),
    name,
  );

  it('never throws; a folded domain is lower-case LDH labels, at most 253 octets, one path component, idempotent', () => {
    fc.assert(
      fc.property(domain, (d) => {
        const folded = foldDomain(d);
        if (folded === undefined) return;
        expect(folded).toMatch(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/);
        expect(folded.length).toBeLessThanOrEqual(253);
        plainComponent(folded);
        expect(foldDomain(folded)).toBe(folded);
        expect(foldDomain(folded.toUpperCase())).toBe(folded);
        expect(normalizeName(folded)).toBe(folded);
      }),
      { numRuns: 3000 },
    );
  });

  it('an ASCII host name folds to itself in lower case, without its trailing dot', () => {
    fc.assert(
      fc.property(fc.domain(), fc.boolean(), fc.boolean(), (d, upper, dot) => {
        expect(foldDomain(`${upper ? d.toUpperCase() : d}${dot ? '.' : ''}`)).toBe(d.toLowerCase());
      }),
      { numRuns: 1000 },
    );
  });
});
