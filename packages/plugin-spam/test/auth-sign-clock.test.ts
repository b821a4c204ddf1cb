/**
 * sign() (auth-helpers) must not depend on when the clock ticks. mailauth, given no
 * signTime, reads Math.round(Date.now() / 1000) once for the header it signs and once,
 * after crypto.sign, for the header it emits: across a half-second boundary the two t=
 * differ and the signature is bad. Here the clock is made to cross one on every read.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dkimVerify } from '../src/auth/mailauth.js';
import { ED25519_RECORD, mail, RSA_RECORD, sign } from './auth-helpers.js';

const resolver = async (name: string): Promise<unknown[]> => [[name.startsWith('ed.') ? ED25519_RECORD : RSA_RECORD]];

afterEach(() => {
  vi.restoreAllMocks();
});

describe('sign() and the clock', () => {
  it('both signatures verify when a half-second boundary falls between mailauth\'s clock reads', async () => {
    let reads = 0;
    // 0.499 s past a second, then 2 ms later on every read: the first two reads round apart
    vi.spyOn(Date, 'now').mockImplementation(() => 1_795_000_000_499 + 2 * reads++);
    const raw = await sign(mail('ann@reject.example'), { domain: 'reject.example', key: 'ed25519' }, { domain: 'reject.example', key: 'rsa' });
    vi.restoreAllMocks();
    const out = await dkimVerify(Buffer.from(raw), { resolver });
    expect(out.results.map((r) => [r.selector, r.status.result, r.status.comment])).toEqual([
      ['ed', 'pass', undefined],
      ['rsa', 'pass', undefined],
    ]);
  });
});
