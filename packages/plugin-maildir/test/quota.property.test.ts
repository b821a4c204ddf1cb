/**
 * Property tests of Maildir++ quotas. The maildirsize file is written by us, by Dovecot
 * or Courier, or damaged: parseMaildirsize reads the definition and the exact sum of the
 * deltas whatever the padding, blank lines and line ends (BigInt sums are the oracle),
 * refuses a file with any other line, and never throws; QuotaStore.usage on a file of
 * any content answers the file's sums or a fresh scan (and then rewrites the file),
 * never an error.
 */
import fc from 'fast-check';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fits, MAILDIRSIZE, parseMaildirsize, QuotaStore, quotaDefinition, scanMaildir, type Usage } from '../src/quota.js';
import { tempDir } from './helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let n = 0;
beforeAll(async () => void (tmp = await tempDir('mg-quota-prop-')));
afterAll(() => tmp.cleanup());

const limit = fc.record({ bytes: fc.nat(2 ** 40), messages: fc.nat(100_000) }, { requiredKeys: [] });
/** Deltas as Maildir++ writers append them: positive for deliveries, negative for removals. */
const delta = fc.tuple(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: -1000, max: 1000 }));
const blank = fc.constantFrom('', ' ', '  ', '\t');
const eol = fc.constantFrom('\n', '\r\n');
/** One delta line, padded as some writers do, or a blank line. */
const deltaLine = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(blank, delta, fc.constantFrom(' ', '   ', '\t', ' \t '), blank).map(([a, [b, c], gap, z]) => ({ text: `${a}${b}${gap}${c}${z}`, bytes: b, messages: c })) },
  { weight: 1, arbitrary: blank.map((text) => ({ text, bytes: 0, messages: 0 })) },
);

const file = fc
  .tuple(limit, fc.array(fc.tuple(deltaLine, eol), { maxLength: 12 }), eol)
  .map(([l, lines, end]) => ({
    definition: quotaDefinition(l),
    text: `${quotaDefinition(l)}${end}${lines.map(([d, e]) => d.text + e).join('')}`,
    usage: { bytes: lines.reduce((s, [d]) => s + d.bytes, 0), messages: lines.reduce((s, [d]) => s + d.messages, 0) },
  }));

/** Damage: any text, or a good file with a line replaced, cut short or with bytes inserted. */
const damaged = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.fullUnicodeString({ maxLength: 30 }),
  fc.tuple(file, fc.nat(), fc.constantFrom('', 'x', '1', '-', '--1 2', '1 2 3', '1,2', '0x10 1', '1e3 1', '\0', ' - 1 1', '١ ١')).map(([f, at, junk]) => {
    const i = at % (f.text.length + 1);
    return f.text.slice(0, i) + junk + f.text.slice(i);
  }),
);

describe('parseMaildirsize', () => {
  it('reads the definition and the exact sum of every delta, whatever the padding, blank lines and line ends', () => {
    fc.assert(
      fc.property(file, (f) => {
        expect(parseMaildirsize(f.text)).toEqual({ definition: f.definition, usage: f.usage });
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on any content; what it accepts has only "<int> <int>" lines after the first, and sums them', () => {
    fc.assert(
      fc.property(damaged, (text) => {
        const parsed = parseMaildirsize(text);
        const lines = text.split('\n');
        const body = lines.slice(1).map((l) => l.trim()).filter(Boolean);
        const wellFormed = body.every((l) => /^-?\d+\s+-?\d+$/.test(l));
        expect(parsed !== undefined).toBe(wellFormed);
        if (!parsed) return;
        expect(parsed.definition).toBe(lines[0]!.trim());
        // small numbers only: the sums are exact (big ones are another matter, see quota-overflow)
        if (body.every((l) => l.length < 16)) {
          const sum = (k: 0 | 1) => body.reduce((s, l) => s + BigInt(l.split(/\s+/)[k]!), 0n);
          expect([BigInt(parsed.usage.bytes), BigInt(parsed.usage.messages)]).toEqual([sum(0), sum(1)]);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('quotaDefinition and fits', () => {
  it('the definition is "<bytes>S,<count>C" (each optional) and reads back as the first line', () => {
    fc.assert(
      fc.property(limit, (l) => {
        const def = quotaDefinition(l);
        expect(def).toBe([l.bytes !== undefined ? `${l.bytes}S` : '', l.messages !== undefined ? `${l.messages}C` : ''].filter(Boolean).join(','));
        expect(parseMaildirsize(`${def}\n`)?.definition).toBe(def);
      }),
      { numRuns: 500 },
    );
  });

  it('fits is monotone: what fits still fits with less to add, and no limit means everything fits', () => {
    const usage = fc.record({ bytes: fc.nat(2 ** 41), messages: fc.nat(200_000) });
    fc.assert(
      fc.property(usage, limit, usage, fc.nat(2 ** 41), fc.nat(1000), (u, l, add, less, fewer) => {
        const smaller: Usage = { bytes: Math.max(0, add.bytes - less), messages: Math.max(0, add.messages - fewer) };
        if (fits(u, l, add)) expect(fits(u, l, smaller)).toBe(true);
        expect(fits(u, {}, add)).toBe(true);
        expect(fits(u, l, add)).toBe((l.bytes === undefined || u.bytes + add.bytes <= l.bytes) && (l.messages === undefined || u.messages + add.messages <= l.messages));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('QuotaStore.usage on a maildirsize of any content', () => {
  it("answers the file's sums when it is good and current, else a scan of the Maildir, and then rewrites the file", async () => {
    const messages = fc.array(fc.tuple(fc.constantFrom('new', 'cur', '.Sent/cur'), fc.nat(5000)), { maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(fc.oneof(file.map((f) => f.text), damaged), limit, messages, async (content, l, msgs) => {
        const box = join(tmp.dir, `box${n++}`);
        for (const d of ['new', 'cur', 'tmp', '.Sent/new', '.Sent/cur']) await mkdir(join(box, d), { recursive: true });
        for (const [i, [dir, size]] of msgs.entries()) await writeFile(join(box, dir, `${i}.M1P1.host,S=${size}:2,`), '');
        await writeFile(join(box, MAILDIRSIZE), content);
        const scanned = await scanMaildir(box);
        const store = new QuotaStore({ fileMode: 0o600, uniqueName: () => `rebuild${n++}` });
        const used = await store.usage(box, l);
        const parsed = parseMaildirsize(content);
        const current = parsed !== undefined && parsed.definition === quotaDefinition(l) && Buffer.byteLength(content) <= 5120;
        if (current && fits(parsed.usage, l, { bytes: 1, messages: 1 })) expect(used).toEqual(parsed.usage);
        else if (!current) {
          expect(used).toEqual(scanned);
          expect(await readFile(join(box, MAILDIRSIZE), 'utf8')).toBe(`${quotaDefinition(l)}\n${scanned.bytes} ${scanned.messages}\n`);
        } else expect([parsed.usage, scanned]).toContainEqual(used); // over quota by the file: a fresh file is trusted, an old one re-scanned
      }),
      { numRuns: 80 },
    );
  });
});
