/**
 * CNAME targets taken from a response unchecked (found by property testing; kept out of
 * answer.property.test.ts because it fails on the current source). `interpret` lower-cases
 * a CNAME's target and puts it in `chain`; the resolver then asks for it as it is. The
 * name the caller gave went through normalizeName, whose job (names.ts) is to refuse
 * "names that cannot be sent … instead of producing a corrupt query"; the target never
 * does. So a response (spoof-checked, but from any server on the path of a forwarder, or
 * a broken zone) with a CNAME to "." or to a label of raw non-ASCII octets makes the
 * resolver query the root, or a name normalizeName would refuse; with invalid UTF-8 in
 * the label (each octet decodes to U+FFFD, three octets when encoded again) a 40-octet
 * label becomes 120, written as a length byte with the top bits 01, a corrupt query.
 *
 * Expected: a chain target that is not a valid name ends the lookup with
 * DnsError('BADRESP') (temporary), as any other response that makes no sense.
 */
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { interpret } from '../../src/dns/answer.js';
import { DnsError } from '../../src/dns/errors.js';
import { normalizeName } from '../../src/dns/names.js';
import type { DnsResponse } from '../../src/dns/transport.js';

const QNAME = 'alias.example.test';
const server = { host: '192.0.2.53', port: 53, family: 4 as const };

/** A response whose answer section is a CNAME from QNAME to a name made of these raw label octets. */
function cnameTo(labels: Uint8Array[]): DnsResponse {
  const head = dnsPacket.encode({ type: 'response', id: 1, questions: [{ name: QNAME, type: 'A' }] });
  head.writeUInt16BE(1, 6); // ANCOUNT
  const owner = Buffer.from([0xc0, 12]); // pointer to the question name
  const target = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), l])), Buffer.from([0])]);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(5, 0); // CNAME
  fixed.writeUInt16BE(1, 2); // IN
  fixed.writeUInt32BE(300, 4);
  fixed.writeUInt16BE(target.length, 8);
  const packet = dnsPacket.decode(Buffer.concat([head, owner, fixed, target]));
  return { rcode: 0, truncated: false, answers: packet.answers ?? [], authorities: [], edns: false, server, transport: 'udp' };
}

/** The follow-up query the resolver would send for `name`, as the server reads it back (or the decoder's complaint). */
function followUp(name: string): string {
  try {
    return dnsPacket.decode(dnsPacket.encode({ type: 'query', id: 2, questions: [{ name, type: 'A', class: 'IN' }] })).questions![0]!.name;
  } catch (error) {
    return `undecodable: ${(error as Error).message}`;
  }
}

describe('CNAME targets from the wire', () => {
  it('every name interpret puts in the chain is a valid name that makes a well-formed query, or the response is refused', () => {
    const label = fc.oneof(fc.stringMatching(/^[a-z0-9]{1,10}$/).map((s) => Buffer.from(s)), fc.uint8Array({ minLength: 1, maxLength: 63 }));
    fc.assert(
      fc.property(fc.array(label, { maxLength: 3 }), (labels) => {
        let chain: string[];
        try {
          chain = interpret({ name: QNAME, type: 'A' }, cnameTo(labels)).chain;
        } catch (error) {
          expect(error).toBeInstanceOf(DnsError);
          return;
        }
        for (const target of chain) {
          expect(() => normalizeName(target)).not.toThrow();
          expect(followUp(target)).toBe(target);
        }
      }),
      { numRuns: 500 },
    );
  });

  /** What interpret throws for `res` (a DNS question for QNAME A), or undefined. */
  const refusal = (res: DnsResponse) => {
    try {
      interpret({ name: QNAME, type: 'A' }, res);
      return undefined;
    } catch (error) {
      return error;
    }
  };

  it('regression: a CNAME to the root is refused (observed: "" in the chain, the resolver then asked the root for A)', () => {
    const error = refusal(cnameTo([]));
    expect(error).toBeInstanceOf(DnsError);
    expect(error).toMatchObject({ code: 'BADRESP', temporary: true });
  });

  it('regression: a label of 40 octets 0xff is refused (observed: 40 U+FFFD in the chain, a query label of 120 octets)', () => {
    const error = refusal(cnameTo([new Uint8Array(40).fill(0xff), Buffer.from('test')]));
    expect(error).toBeInstanceOf(DnsError);
    expect(error).toMatchObject({ code: 'BADRESP', temporary: true });
  });
});
