import { join, resolve as resolvePath, sep } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maildirOptionsSchema, type MaildirOptionsInput } from '@mailgate/plugin-maildir';
import { Mapper, type Resolution } from '../src/mapping.js';
import { foldDomain, unsafeComponent } from '../src/safety.js';

const ROOT = '/srv/mail';

function mapper(options: Partial<MaildirOptionsInput> = {}, existing: string[] = [], localDomains: string[] = []): Mapper {
  const parsed = maildirOptionsSchema.parse({ root: ROOT, domains: ['example.test', 'other.test'], ...options });
  return new Mapper({
    options: parsed,
    root: parsed.mailbox === undefined ? ROOT : undefined,
    mailbox: parsed.mailbox,
    isLocalDomain: (d) => localDomains.includes(d),
    isDirectory: async (p) => existing.includes(p),
  });
}

/** Resolution in short: "deliver <dir>,<dir>", "unsafe", "unknown", "skip", "error". */
function brief(r: Resolution): string {
  return r.kind === 'deliver' ? `deliver ${r.targets.map((t) => t.dir.slice(ROOT.length + 1)).join(',')}` : r.kind;
}

async function at(m: Mapper, address: string): Promise<string> {
  const i = address.lastIndexOf('@');
  return brief(await m.resolve(address.slice(0, i), address.slice(i + 1)));
}

describe('path safety: hostile local parts', () => {
  // [local part, expected] with domains [example.test] and no mailbox list (auto-create mode)
  const table: Array<[string, string]> = [
    ['bob', 'deliver example.test/bob'],
    ['../x', 'unsafe'],
    ['..', 'unsafe'],
    ['.', 'unsafe'],
    ['.hidden', 'unsafe'],
    ['.Trash', 'unsafe'],
    ['a/b', 'unsafe'],
    ['/etc/passwd', 'unsafe'],
    ['a\\b', 'unsafe'],
    ['a\u0000b', 'unsafe'],
    ['\u0000', 'unsafe'],
    ['a\r\nb', 'unsafe'],
    ['a\tb', 'unsafe'],
    ['a'.repeat(300), 'unsafe'],
    ['a'.repeat(65), 'unsafe'],
    ['a'.repeat(64), `deliver example.test/${'a'.repeat(64)}`],
    ['a\uff0fb', 'unsafe'], // fullwidth solidus ／
    ['\uff0e\uff0e', 'unsafe'], // fullwidth full stops ．．
    ['a\u2215b', 'unsafe'], // division slash ∕
    ['a\u2024b', 'unsafe'], // one-dot leader ․
    ['\uff41\uff44\uff4d\uff49\uff4e', 'unsafe'], // fullwidth "admin"
    ['\ufb01le', 'unsafe'], // ligature ﬁ
    ['\u212Aate', 'unsafe'], // Kelvin sign: would lower-case to an ASCII k
    ['a\u202eb', 'unsafe'], // right-to-left override
    ['a\u200bb', 'unsafe'], // zero-width space
    ['a b', 'unsafe'],
    ['a"b', 'unsafe'],
    ['a@b', 'unsafe'],
    ['a..b', 'unsafe'],
    ['a.', 'unsafe'],
    ['%2e%2e', 'deliver example.test/%2e%2e'], // no URL decoding ever: a literal name
    ['%2f', 'deliver example.test/%2f'],
    ['~root', 'deliver example.test/~root'],
    ['tmp', 'deliver example.test/tmp'],
    ['first.last', 'deliver example.test/first.last'],
    ['Bob', 'deliver example.test/bob'],
    ['J\u00f6rg', 'deliver example.test/j\u00f6rg'],
    ['Jo\u0308rg', 'unsafe'], // decomposed ö: UTF-8 addresses must be NFC (RFC 6532)
    ['\u7530\u4e2d', 'deliver example.test/\u7530\u4e2d'],
  ];
  for (const [local, expected] of table) {
    it(`${JSON.stringify(local.length > 40 ? `${local.slice(0, 10)}…(${local.length})` : local)} → ${expected.split(' ')[0]}`, async () => {
      expect(brief(await mapper().resolve(local, 'example.test'))).toBe(expected);
    });
  }

  it('never yields a path outside the root, nor anything but one plain component (property)', async () => {
    const m = mapper();
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constantFrom('..', '.', '/', '\\', '\u0000', '\uff0f')), async (local) => {
        const r = await m.resolve(local, 'example.test');
        if (r.kind !== 'deliver') return;
        for (const t of r.targets) {
          expect(t.dir.startsWith(`${ROOT}${sep}example.test${sep}`)).toBe(true);
          const name = t.dir.slice(`${ROOT}/example.test/`.length);
          expect(name).not.toContain('/');
          expect(name.startsWith('.')).toBe(false);
          expect(resolvePath(t.dir)).toBe(t.dir);
          expect(unsafeComponent(name)).toBeUndefined();
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('domains', () => {
  it('folds case, the trailing dot and IDNA; refuses what is not a plain domain', () => {
    expect(foldDomain('Example.TEST')).toBe('example.test');
    expect(foldDomain('example.test.')).toBe('example.test');
    expect(foldDomain('ex\u00e4mple.test')).toBe('xn--exmple-cua.test');
    expect(foldDomain('\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.test')).toBe('example.test'); // IDNA maps fullwidth letters
    for (const bad of ['', '.', '..example.test', 'a..b', 'a/b.test', '\u00e9/x.test', 'a\uff0fb.test', '[127.0.0.1]', '[IPv6:::1]', 'a_b.test', '-a.test', 'a-.test', `${'a'.repeat(64)}.test`, 'a b.test', 'a%2fb.test']) {
      expect(foldDomain(bad), bad).toBeUndefined();
    }
  });

  it('serves listed domains in any case and with a trailing dot; skips others', async () => {
    const m = mapper();
    expect(await at(m, 'bob@EXAMPLE.Test')).toBe('deliver example.test/bob');
    expect(await at(m, 'bob@example.test.')).toBe('deliver example.test/bob');
    expect(await at(m, 'bob@elsewhere.test')).toBe('skip');
    expect(await at(m, 'bob@[127.0.0.1]')).toBe('skip');
  });

  it('"*" serves every domain, and refuses domains that cannot be a directory name with 5.1.3', async () => {
    const m = mapper({ domains: '*' });
    expect(await at(m, 'bob@Any.Where.')).toBe('deliver any.where/bob');
    expect(await at(m, 'bob@[127.0.0.1]')).toBe('unsafe');
    expect(await at(m, 'bob@a_b.test')).toBe('unsafe');
  });

  it('without `domains`, serves the domains the gateway declares local', async () => {
    const m = mapper({ domains: undefined }, [], ['acl.test']);
    expect(await at(m, 'bob@acl.test')).toBe('deliver acl.test/bob');
    expect(await at(m, 'bob@example.test')).toBe('skip');
  });
});

describe('mapping', () => {
  it('static mailbox list, with bare local parts for every domain', async () => {
    const m = mapper({ mailboxes: ['bob@example.test', 'Alice', { address: 'carol@other.test', quota: { bytes: '1MB' } }] });
    expect(await at(m, 'bob@example.test')).toBe('deliver example.test/bob');
    expect(await at(m, 'bob@other.test')).toBe('unknown');
    expect(await at(m, 'alice@other.test')).toBe('deliver other.test/alice');
    expect(await at(m, 'ALICE@example.test')).toBe('deliver example.test/alice');
    const carol = await m.resolve('carol', 'other.test');
    expect(carol.kind === 'deliver' && carol.targets[0]!.quota).toEqual({ bytes: 1024 * 1024 });
    expect(await at(m, '../bob@example.test')).toBe('unsafe'); // unsafe wins over unknown
  });

  it('existing-mailbox check', async () => {
    const m = mapper({ mailboxExists: true }, [join(ROOT, 'example.test/bob')]);
    expect(await at(m, 'bob@example.test')).toBe('deliver example.test/bob');
    expect(await at(m, 'eve@example.test')).toBe('unknown');
  });

  it('path template', async () => {
    const m = mapper({ path: '{root}/{domain}/users/{user}/Maildir' });
    expect(await at(m, 'Bob@example.test')).toBe('deliver example.test/users/bob/Maildir');
  });

  it('aliases: one to many, chained, bare keys and targets, tag fallback, deduplicated', async () => {
    const m = mapper({
      mailboxes: ['alice@example.test', 'bob@example.test', 'carol@other.test'],
      aliases: {
        'team@example.test': ['alice', 'sales@example.test', 'bob'],
        sales: ['bob', 'carol@other.test'],
        'abuse@other.test': 'postmaster@other.test',
        postmaster: 'alice@example.test',
      },
    });
    expect(await at(m, 'team@example.test')).toBe('deliver example.test/alice,example.test/bob,other.test/carol');
    expect(await at(m, 'team+x@example.test')).toBe('deliver example.test/alice,example.test/bob,other.test/carol');
    // sales@other.test → bob@other.test, which is no mailbox: a broken alias is a configuration error (451 4.3.5)
    expect(await at(m, 'sales@other.test')).toBe('error');
    expect(await at(m, 'abuse@other.test')).toBe('deliver example.test/alice');
    expect(await at(m, 'Postmaster@example.test')).toBe('deliver example.test/alice');
  });

  it('an alias or catch-all target that is no mailbox is a configuration error, not an unknown user', async () => {
    const m = mapper({ mailboxes: ['bob@example.test'], aliases: { sales: 'bob' }, catchAll: { 'other.test': 'nobody' } });
    expect(await at(m, 'sales@example.test')).toBe('deliver example.test/bob');
    expect(await at(m, 'sales@other.test')).toBe('error');
    expect(await at(m, 'x@other.test')).toBe('error');
  });

  it('catch-all per domain, after aliases and mailboxes', async () => {
    const m = mapper({ mailboxes: ['bob@example.test', 'admin@example.test'], aliases: { info: 'bob' }, catchAll: { 'Example.test': 'admin' } });
    expect(await at(m, 'bob@example.test')).toBe('deliver example.test/bob');
    expect(await at(m, 'info@example.test')).toBe('deliver example.test/bob');
    expect(await at(m, 'whoever@example.test')).toBe('deliver example.test/admin');
    expect(await at(m, 'whoever@other.test')).toBe('unknown');
    expect(await at(m, '.x@example.test')).toBe('unsafe'); // the catch-all does not take unsafe names
  });

  it('sub-addressing: separators, folder, disabled', async () => {
    expect(await at(mapper(), 'bob+tag@example.test')).toBe('deliver example.test/bob');
    expect(await at(mapper(), '+tag@example.test')).toBe('deliver example.test/+tag');
    expect(await at(mapper({ subaddress: { separator: '+-' } }), 'bob-tag@example.test')).toBe('deliver example.test/bob');
    expect(await at(mapper({ subaddress: false }), 'bob+tag@example.test')).toBe('deliver example.test/bob+tag');
    expect(await at(mapper({ subaddress: { folder: true, createFolder: true } }), 'bob+Lists@example.test')).toBe('deliver example.test/bob/.lists');
    expect(await at(mapper({ subaddress: { folder: true } }), 'bob+lists@example.test')).toBe('deliver example.test/bob');
    expect(await at(mapper({ subaddress: { folder: true } }, [join(ROOT, 'example.test/bob/.lists')]), 'bob+lists@example.test')).toBe('deliver example.test/bob/.lists');
    expect(await at(mapper({ subaddress: { folder: true, createFolder: true } }), 'bob+a.b@example.test')).toBe('deliver example.test/bob');
    const r = await mapper({ subaddress: { folder: true, createFolder: true } }).resolve('bob+x', 'example.test');
    expect(r.kind === 'deliver' && r.targets[0]).toMatchObject({ address: 'bob+x@example.test', mailbox: join(ROOT, 'example.test/bob'), dir: join(ROOT, 'example.test/bob/.x') });
  });

  it('normalization: case, dots, custom', async () => {
    expect(await at(mapper({ normalize: { lowercase: false } }), 'Bob@example.test')).toBe('deliver example.test/Bob');
    expect(await at(mapper({ normalize: { stripDots: true } }), 'First.Last+x@example.test')).toBe('deliver example.test/firstlast');
    const custom = mapper({ normalize: { custom: (user: string) => user.replace(/-/g, '_') }, mailboxes: ['a_b@example.test'] });
    expect(await at(custom, 'A-B@example.test')).toBe('deliver example.test/a_b');
    const evil = mapper({ normalize: { custom: () => '../../etc' } });
    expect(await at(evil, 'bob@example.test')).toBe('unsafe');
  });

  it('bare <postmaster> goes to postmaster@ the first listed domain, or the `postmaster` option', async () => {
    expect(brief(await mapper({ aliases: { postmaster: 'bob' } }).resolve('postmaster', '', true))).toBe('deliver example.test/bob');
    expect(brief(await mapper({ postmaster: 'admin@other.test' }).resolve('postmaster', '', true))).toBe('deliver other.test/admin');
    expect(brief(await mapper({ domains: '*' }).resolve('postmaster', '', true))).toBe('skip');
  });

  it('single-mailbox mode maps everything to the one Maildir, whatever the local part', async () => {
    const m = mapper({ root: undefined, mailbox: '/srv/all', domains: '*' });
    const r = await m.resolve('../../x', 'Any.Test');
    expect(r.kind === 'deliver' && r.targets.map((t) => t.dir)).toEqual(['/srv/all']);
  });
});

describe('mapping options are checked at load, with their path', () => {
  function issues(options: Partial<MaildirOptionsInput>): string[] {
    const r = maildirOptionsSchema.safeParse({ root: ROOT, domains: ['example.test'], ...options });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  }

  it('alias loops', () => {
    expect(issues({ aliases: { a: 'b', b: 'a' } }).join('\n')).toMatch(/^aliases\.a: alias loop: a@example\.test → b@example\.test → a@example\.test/);
    expect(issues({ aliases: { a: 'a' } })).toHaveLength(1);
    expect(issues({ aliases: { 'a@example.test': 'b', b: ['c', 'A'] } }).join()).toMatch(/alias loop/);
    expect(issues({ aliases: { 'a+x@example.test': 'a' } })).toEqual([]); // user+tag → user is no loop
    expect(issues({ aliases: { a: 'b', b: 'c' } })).toEqual([]);
  });

  it('targets outside `domains`, unsafe names, duplicates after normalization', () => {
    expect(issues({ aliases: { a: 'x@elsewhere.test' } }).join()).toMatch(/^aliases\.a: target "x@elsewhere\.test": elsewhere\.test is not one of `domains`/);
    expect(issues({ aliases: { a: ['b', '../c'] } }).join()).toMatch(/^aliases\.a\.1: target "\.\.\/c": unsafe mailbox name/);
    expect(issues({ aliases: { Sales: 'b', sales: 'c' } }).join()).toMatch(/given twice/);
    expect(issues({ mailboxes: ['.x@example.test'] }).join()).toMatch(/^mailboxes\.0: /);
    expect(issues({ catchAll: { 'elsewhere.test': 'admin' } }).join()).toMatch(/^catchAll\.elsewhere\.test: /);
  });
});
