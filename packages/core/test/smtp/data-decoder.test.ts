import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BareLineEndingScanner, DataDecoder, type BareLineEndingPolicy } from '../../src/smtp/data-decoder.js';
import { b, clientEncode, decodeChunks, referenceDecode, s, splitAt } from './helpers.js';

const POLICIES: BareLineEndingPolicy[] = ['reject', 'normalize'];

describe('DataDecoder: basics', () => {
  it.each(POLICIES)('empty message: ".\\r\\n" right after 354 (%s)', (policy) => {
    const r = decodeChunks(policy, ['.\r\n']);
    expect(r).toMatchObject({ body: '', total: 3, done: true, violation: null, size: 0 });
  });

  it.each(POLICIES)('empty message followed by pipelined commands (%s)', (policy) => {
    const d = new DataDecoder(policy);
    const input = b('.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n');
    const r = d.write(input);
    expect(r.done).toBe(true);
    expect(r.consumed).toBe(3);
    expect(r.body).toEqual([]);
    expect(s(input.subarray(r.consumed))).toBe('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n');
  });

  it.each(POLICIES)('simple message (%s)', (policy) => {
    const r = decodeChunks(policy, ['Subject: hi\r\n\r\nHello\r\n.\r\n']);
    expect(r).toMatchObject({ body: 'Subject: hi\r\n\r\nHello\r\n', total: 25, done: true, violation: null });
  });

  it.each(POLICIES)('body of one empty line (%s)', (policy) => {
    expect(decodeChunks(policy, ['\r\n.\r\n'])).toMatchObject({ body: '\r\n', total: 5, done: true });
  });

  it.each(POLICIES)('pipelined bytes after the marker are left to the caller (%s)', (policy) => {
    const d = new DataDecoder(policy);
    const input = b('x\r\n.\r\nQUIT\r\n');
    const r = d.write(input);
    expect(r).toMatchObject({ consumed: 6, done: true });
    expect(s(Buffer.concat(r.body))).toBe('x\r\n');
    expect(s(input.subarray(r.consumed))).toBe('QUIT\r\n');
    // Further writes are ignored.
    expect(d.write(b('more\r\n.\r\n'))).toEqual({ body: [], consumed: 0, done: true });
    expect(d.done).toBe(true);
    expect(d.size).toBe(3);
  });

  it.each(POLICIES)('dot-unstuffing (%s)', (policy) => {
    const r = decodeChunks(policy, ['..x\r\na\r\n..b\r\n...\r\n..\r\n.c\r\nd.e\r\n .f\r\n.\r\n']);
    expect(r.body).toBe('.x\r\na\r\n.b\r\n..\r\n.\r\nc\r\nd.e\r\n .f\r\n');
    expect(r.done).toBe(true);
  });

  it.each(POLICIES)('".." line is content, not the end (%s)', (policy) => {
    const r = decodeChunks(policy, ['a\r\n..\r\nb\r\n']);
    expect(r).toMatchObject({ body: 'a\r\n.\r\nb\r\n', done: false, total: 10 });
  });

  it.each(POLICIES)('". " / ".x" lines are content (%s)', (policy) => {
    expect(decodeChunks(policy, ['a\r\n. \r\n.x\r\n.\r\n']).body).toBe('a\r\n \r\nx\r\n');
  });

  it.each(POLICIES)('no end without the marker; empty writes are fine (%s)', (policy) => {
    const r = decodeChunks(policy, ['', 'abc', '', '\r\n', '']);
    expect(r).toMatchObject({ body: 'abc\r\n', done: false, total: 5, consumed: [0, 3, 0, 2, 0] });
  });

  it('returns slices of the input (no copy) for clean data', () => {
    const d = new DataDecoder('reject');
    const input = b('hello\r\nworld\r\n.\r\n');
    const r = d.write(input);
    expect(r.body).toHaveLength(1);
    expect(r.body[0]!.buffer).toBe(input.buffer);
    expect(s(r.body[0]!)).toBe('hello\r\nworld\r\n');
  });

  it('8-bit and NUL bytes pass through', () => {
    const body = Buffer.from([0, 1, 0xff, 0x80, 0x0d, 0x0a]);
    const r = decodeChunks('reject', [Buffer.concat([body, b('.\r\n')])]);
    expect(r.body).toBe(s(body));
    expect(r.done).toBe(true);
  });

  it('an invalid policy value falls back to reject', () => {
    const d = new DataDecoder('bogus' as BareLineEndingPolicy);
    expect(d.policy).toBe('reject');
  });
});

// `a` + sequence + `X\r\n` then `.\r\n`: none of the sequences may end the data.
// Expected bodies: [reject, normalize]; expected first violation in reject mode.
const SMUGGLING: Array<[string, string, string, 'bare-lf' | 'bare-cr']> = [
  ['\n.\n', 'a\n.\nX\r\n', 'a\r\n\r\nX\r\n', 'bare-lf'],
  ['\n.\r\n', 'a\n.\r\nX\r\n', 'a\r\n\r\nX\r\n', 'bare-lf'],
  ['\r\n.\n', 'a\r\n\nX\r\n', 'a\r\n\r\nX\r\n', 'bare-lf'],
  ['\r.\r', 'a\r.\rX\r\n', 'a\r\n\r\nX\r\n', 'bare-cr'],
  ['\r\n.\r', 'a\r\n\rX\r\n', 'a\r\n\r\nX\r\n', 'bare-cr'],
  ['\r.\r\n', 'a\r.\r\nX\r\n', 'a\r\n\r\nX\r\n', 'bare-cr'],
  ['\r.\n', 'a\r.\nX\r\n', 'a\r\n\r\nX\r\n', 'bare-cr'],
  ['\n.\r', 'a\n.\rX\r\n', 'a\r\n\r\nX\r\n', 'bare-lf'],
  ['\n\n.\n\n', 'a\n\n.\n\nX\r\n', 'a\r\n\r\n\r\n\r\nX\r\n', 'bare-lf'],
  ['\r\r.\r\r', 'a\r\r.\r\rX\r\n', 'a\r\n\r\n\r\n\r\nX\r\n', 'bare-cr'],
  ['\r\n.\r\r\n', 'a\r\n\r\r\nX\r\n', 'a\r\n\r\n\r\nX\r\n', 'bare-cr'],
  ['\r\n.\n\r\n', 'a\r\n\n\r\nX\r\n', 'a\r\n\r\n\r\nX\r\n', 'bare-lf'],
  ['\n.\n.\r\n', 'a\n.\n.\r\nX\r\n', 'a\r\n\r\n\r\nX\r\n', 'bare-lf'],
  ['\r\n\n.\r\n', 'a\r\n\n.\r\nX\r\n', 'a\r\n\r\n\r\nX\r\n', 'bare-lf'],
  ['\r\r\n.\r\r\n', 'a\r\r\n\r\r\nX\r\n', 'a\r\n\r\n\r\n\r\nX\r\n', 'bare-cr'],
];

describe('DataDecoder: SMTP smuggling sequences never end the data', () => {
  for (const [seq, rejectBody, normBody, viol] of SMUGGLING) {
    const input = `a${seq}X\r\n`;
    for (const policy of POLICIES) {
      it(`${JSON.stringify(seq)} (${policy})`, () => {
        const smuggled = `a${seq}MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n`;
        const r1 = decodeChunks(policy, [smuggled]);
        expect(r1.done).toBe(false);
        expect(r1.total).toBe(smuggled.length);

        const r = decodeChunks(policy, [input, '.\r\nNEXT']);
        expect(r.done).toBe(true);
        expect(r.consumed).toEqual([input.length, 3]);
        expect(r.body).toBe(policy === 'reject' ? rejectBody : normBody);
        expect(r.violation).toBe(policy === 'reject' ? viol : null);
        expect(r.bare).toBeGreaterThan(0);

        // Same result for every 2-way split of the whole stream.
        const whole = b(input + '.\r\nNEXT');
        for (let i = 0; i <= whole.length; i++) {
          const rs = decodeChunks(policy, splitAt(whole, [i]));
          expect(rs.body).toBe(r.body);
          expect(rs.total).toBe(input.length + 3);
          expect(rs.done).toBe(true);
          expect(rs.violation).toBe(r.violation);
        }
      });
    }
  }

  it.each(POLICIES)('a real <CRLF>.<CRLF> after bare line endings still ends the data (%s)', (policy) => {
    const r = decodeChunks(policy, ['a\n\r\n.\r\nMAIL']);
    expect(r.done).toBe(true);
    expect(r.total).toBe(7);
    expect(r.body).toBe(policy === 'reject' ? 'a\n\r\n' : 'a\r\n\r\n');
    expect(r.violation).toBe(policy === 'reject' ? 'bare-lf' : null);
  });

  it.each(POLICIES)('the Postfix/SEC Consult example stays one message (%s)', (policy) => {
    const attack =
      'From: a@x\r\nSubject: one\r\n\r\nhello\n.\r\nMAIL FROM:<admin@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n' +
      'From: admin@x\r\nSubject: two\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n';
    const r = decodeChunks(policy, [attack]);
    expect(r.done).toBe(true);
    expect(attack.slice(r.total)).toBe('QUIT\r\n');
    expect(r.body).toContain('smuggled');
  });
});

describe('DataDecoder: split terminator', () => {
  const message = 'Subject: t\r\n\r\nline\r\n..dot\r\n';
  const expectedBody = 'Subject: t\r\n\r\nline\r\n.dot\r\n';
  const input = b(`${message}.\r\nRSET\r\n`);
  const dataLen = message.length + 3;

  for (const policy of POLICIES) {
    it(`every 2-way split (${policy})`, () => {
      for (let i = 0; i <= input.length; i++) {
        const chunks = splitAt(input, [i]);
        const r = decodeChunks(policy, chunks);
        expect(r.body).toBe(expectedBody);
        expect(r.done).toBe(true);
        expect(r.total).toBe(dataLen);
        // consumed is exact per write
        const first = chunks[0]!.length;
        expect(r.consumed).toEqual(i >= dataLen ? [dataLen, 0] : [first, dataLen - first]);
        expect(r.doneAt).toBe(i >= dataLen ? 0 : 1);
      }
    });

    it(`every 3-way split (${policy})`, () => {
      for (let i = 0; i <= input.length; i++) {
        for (let j = i; j <= input.length; j++) {
          const chunks = splitAt(input, [i, j]);
          const r = decodeChunks(policy, chunks);
          expect(r.body).toBe(expectedBody);
          expect(r.done).toBe(true);
          expect(r.total).toBe(dataLen);
          let off = 0;
          chunks.forEach((c, k) => {
            const want = Math.max(0, Math.min(c.length, dataLen - off));
            expect(r.consumed[k]).toBe(want);
            off += c.length;
          });
        }
      }
    });

    it(`byte-at-a-time (${policy})`, () => {
      const chunks = [...input].map((x) => Buffer.from([x]));
      const r = decodeChunks(policy, chunks);
      expect(r.body).toBe(expectedBody);
      expect(r.total).toBe(dataLen);
      expect(r.doneAt).toBe(dataLen - 1);
    });
  }

  it.each(POLICIES)('every 3-way split of a stream full of bare line endings matches the single write (%s)', (policy) => {
    const stream = b('.a\r\n..b\n.c\r.\r\r\n.\rd\n\n.\r\n\r.\r\n..\r\n.\r\nTAIL');
    const one = decodeChunks(policy, [stream]);
    expect(one.done).toBe(true);
    const ref = referenceDecode(stream, policy);
    expect(one).toMatchObject({ body: ref.body, total: ref.consumed, done: ref.done, violation: ref.violation, bare: ref.bare });
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j++) {
        const r = decodeChunks(policy, splitAt(stream, [i, j]));
        expect(r.body).toBe(one.body);
        expect(r.total).toBe(one.total);
        expect(r.violation).toBe(one.violation);
        expect(r.bare).toBe(one.bare);
      }
    }
  });
});

describe('DataDecoder: bare line ending policies', () => {
  it('reject keeps bytes verbatim (no unstuffing after a bare LF) and records the first violation', () => {
    const r = decodeChunks('reject', ['a\n..b\rc\r\n.\r\n']);
    expect(r).toMatchObject({ body: 'a\n..b\rc\r\n', done: true, violation: 'bare-lf', bare: 2 });
  });

  it('reject: first violation is bare-cr when the CR comes first', () => {
    expect(decodeChunks('reject', ['a\rb\nc\r\n.\r\n']).violation).toBe('bare-cr');
  });

  it('normalize rewrites bare LF and bare CR to CRLF, unstuffs after them, and reports no violation', () => {
    const r = decodeChunks('normalize', ['a\n..b\rc\r\r\n.\r\n']);
    expect(r).toMatchObject({ body: 'a\r\n.b\r\nc\r\n\r\n', done: true, violation: null, bare: 3 });
  });

  it('normalize: CR at a chunk end followed by a non-LF', () => {
    const r = decodeChunks('normalize', ['a\r', 'b\r', '\r', '\n.\r\n']);
    expect(r).toMatchObject({ body: 'a\r\nb\r\n\r\n', done: true });
  });

  it('normalize output never contains a bare CR or LF', () => {
    const r = decodeChunks('normalize', ['\r\r\n\n\r\n.\r\r.\n\n\r\n.\r\n']);
    expect(r.done).toBe(true);
    expect(r.body.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  });
});

describe('BareLineEndingScanner (BDAT)', () => {
  const scanAll = (policy: BareLineEndingPolicy, chunks: string[]) => {
    const sc = new BareLineEndingScanner(policy);
    const out: Buffer[] = [];
    for (const c of chunks) out.push(...sc.scan(b(c)));
    out.push(...sc.finish());
    return { out: s(Buffer.concat(out)), violation: sc.violation, bare: sc.bareLineEndings, size: sc.size };
  };

  it.each(POLICIES)('clean data passes through unchanged, no dot handling (%s)', (policy) => {
    const sc = new BareLineEndingScanner(policy);
    const chunk = b('a\r\n.\r\n..b\r\n');
    const out = sc.scan(chunk);
    expect(out).toEqual([chunk]);
    expect(out[0]).toBe(chunk);
    expect(sc.finish()).toEqual([]);
    expect(sc.violation).toBeNull();
  });

  it('reject: records bare LF / bare CR and returns chunks unchanged', () => {
    expect(scanAll('reject', ['a\nb'])).toMatchObject({ out: 'a\nb', violation: 'bare-lf', bare: 1 });
    expect(scanAll('reject', ['a\rb\n'])).toMatchObject({ out: 'a\rb\n', violation: 'bare-cr', bare: 2 });
  });

  it('CRLF split across chunks is not a violation', () => {
    expect(scanAll('reject', ['a\r', '\nb\r', '\n'])).toMatchObject({ out: 'a\r\nb\r\n', violation: null });
    expect(scanAll('normalize', ['a\r', '\nb\r', '\n'])).toMatchObject({ out: 'a\r\nb\r\n', bare: 0 });
  });

  it('CR at a chunk end followed by a non-LF is bare', () => {
    expect(scanAll('reject', ['a\r', 'b'])).toMatchObject({ out: 'a\rb', violation: 'bare-cr' });
    expect(scanAll('normalize', ['a\r', 'b'])).toMatchObject({ out: 'a\r\nb', violation: null, bare: 1 });
  });

  it('trailing CR at the end of the last chunk is resolved by finish()', () => {
    expect(scanAll('reject', ['a\r'])).toMatchObject({ out: 'a\r', violation: 'bare-cr' });
    expect(scanAll('normalize', ['a\r'])).toMatchObject({ out: 'a\r\n', bare: 1, size: 3 });
  });

  it('normalize rewrites every bare line ending', () => {
    expect(scanAll('normalize', ['\n\r\r\n\n', '\r', '', '\r'])).toMatchObject({
      out: '\r\n\r\n\r\n\r\n\r\n\r\n',
      violation: null,
      bare: 5,
      size: 12,
    });
  });

  it('property: chunking does not matter; normalize output is strictly CRLF', () => {
    fc.assert(
      fc.property(byteStream(), fc.array(fc.nat({ max: 300 }), { maxLength: 8 }), (data, cuts) => {
        for (const policy of POLICIES) {
          const sc1 = new BareLineEndingScanner(policy);
          const one = Buffer.concat([...sc1.scan(data), ...sc1.finish()]);
          const sc2 = new BareLineEndingScanner(policy);
          const parts: Buffer[] = [];
          for (const c of splitAt(data, cuts)) parts.push(...sc2.scan(c));
          parts.push(...sc2.finish());
          const many = Buffer.concat(parts);
          expect(s(many)).toBe(s(one));
          expect(sc2.violation).toBe(sc1.violation);
          expect(sc2.bareLineEndings).toBe(sc1.bareLineEndings);
          expect(sc2.size).toBe(many.length);
          if (policy === 'reject') expect(s(many)).toBe(s(data));
          else expect(s(many).replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
        }
      }),
      { numRuns: 500 },
    );
  });
});

/** Byte streams biased towards the interesting octets. */
function byteStream(maxLength = 200): fc.Arbitrary<Buffer> {
  const byte = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(0x0d, 0x0a, 0x2e) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    { weight: 1, arbitrary: fc.constantFrom(0x61, 0x20, 0x00) },
  );
  const piece = fc.oneof(
    { weight: 4, arbitrary: fc.array(byte, { maxLength: 6 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.constantFrom('\r\n.\r\n', '\r\n..\r\n', '\n.\n', '\r.\r', '\n.\r\n', '\r\n.\n', '.\r\n').map(b) },
  );
  return fc.array(piece, { maxLength: maxLength / 6 }).map((ps) => Buffer.concat(ps));
}

const splits = (): fc.Arbitrary<number[]> => fc.array(fc.nat({ max: 400 }), { maxLength: 10 });

describe('DataDecoder: properties', () => {
  it('(a) client dot-stuffing round-trips through any chunking', () => {
    fc.assert(
      fc.property(byteStream(), splits(), fc.constantFrom(...POLICIES), (raw, cuts, policy) => {
        const { wire, expected } = clientEncode(raw);
        const r = decodeChunks(policy, splitAt(wire, cuts));
        expect(r.body).toBe(s(expected));
        expect(r.done).toBe(true);
        expect(r.total).toBe(wire.length);
        expect(r.violation).toBeNull();
        expect(r.bare).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('(a\') also with arbitrary uniform bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), splits(), (raw, cuts) => {
        const { wire, expected } = clientEncode(Buffer.from(raw));
        const r = decodeChunks('reject', splitAt(wire, cuts));
        expect(r.body).toBe(s(expected));
        expect(r.total).toBe(wire.length);
        expect(r.done).toBe(true);
      }),
    );
  });

  it('(b) random streams: never throws, done exactly at the first <CRLF>.<CRLF>, matches the reference model', () => {
    fc.assert(
      fc.property(byteStream(), splits(), fc.constantFrom(...POLICIES), (data, cuts, policy) => {
        const ref = referenceDecode(data, policy);
        const r = decodeChunks(policy, splitAt(data, cuts));
        const t = s(data);
        const marker = t.startsWith('.\r\n') || t.includes('\r\n.\r\n');
        expect(r.done).toBe(marker);
        expect(r.done).toBe(ref.done);
        expect(r.total).toBe(ref.consumed);
        if (ref.done) {
          expect(r.body).toBe(ref.body);
          expect(r.violation).toBe(ref.violation);
          expect(r.bare).toBe(ref.bare);
          if (policy === 'normalize') expect(r.body.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
        } else {
          // Completing the stream must give the reference result for the whole stream.
          const whole = Buffer.concat([data, b('\r\n.\r\n')]);
          const ref2 = referenceDecode(whole, policy);
          const r2 = decodeChunks(policy, [...splitAt(data, cuts), b('\r\n.\r\n')]);
          expect(r2.done).toBe(true);
          expect(r2.body).toBe(ref2.body);
          expect(r2.total).toBe(ref2.consumed);
          expect(r2.violation).toBe(ref2.violation);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('(b\') mutated valid messages: never end early at a non-marker', () => {
    const mutation = fc.record({
      pos: fc.nat(),
      op: fc.constantFrom('insert', 'replace', 'delete'),
      byte: fc.constantFrom(0x0d, 0x0a, 0x2e, 0x00, 0x41),
    });
    fc.assert(
      fc.property(byteStream(120), fc.array(mutation, { maxLength: 6 }), splits(), fc.constantFrom(...POLICIES), (raw, muts, cuts, policy) => {
        const bytes = [...clientEncode(raw).wire];
        for (const m of muts) {
          const p = m.pos % (bytes.length + 1);
          if (m.op === 'insert') bytes.splice(p, 0, m.byte);
          else if (m.op === 'replace' && p < bytes.length) bytes[p] = m.byte;
          else if (m.op === 'delete' && p < bytes.length) bytes.splice(p, 1);
        }
        const data = Buffer.from(bytes);
        const ref = referenceDecode(data, policy);
        const r = decodeChunks(policy, splitAt(data, cuts));
        expect(r.done).toBe(ref.done);
        expect(r.total).toBe(ref.consumed);
        if (ref.done) {
          expect(r.body).toBe(ref.body);
          expect(r.violation).toBe(ref.violation);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary uniform bytes in arbitrary chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), fc.constantFrom(...POLICIES), (chunks, policy) => {
        const d = new DataDecoder(policy);
        for (const c of chunks) d.write(Buffer.from(c));
      }),
    );
  });
});
