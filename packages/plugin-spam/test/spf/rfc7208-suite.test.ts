/**
 * The OpenSPF RFC 7208 test suite (release 2014.04), every scenario served by a real DNS
 * server on loopback and asked through the core's real DnsResolver.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DnsResolver } from '@mailgate/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { checkSpf } from '../../src/spf/index.js';
import { startZoneServer, type SuiteZone, type ZoneServer } from './zone-server.js';

const SUITE = fileURLToPath(new URL('../../../../../shared/data/spf/rfc7208-tests.yml', import.meta.url));

/**
 * Tests that cannot pass, with the reason. Keyed "scenario description / test name".
 */
const SKIP: Record<string, string> = {};

interface SuiteTest {
  description?: string;
  spec?: string | string[];
  helo: string;
  host: string;
  mailfrom: string;
  result: string | string[];
  explanation?: string;
}

interface Scenario {
  description: string;
  tests: Record<string, SuiteTest>;
  zonedata: SuiteZone;
}

function loadSuite(): Scenario[] {
  // the suite has "\x80"-style escapes meaning raw octets: parse as YAML, fix up in the server
  return parseAllDocuments(readFileSync(SUITE, 'utf8')).map((doc) => doc.toJS() as Scenario);
}

/**
 * Silent names (TIMEOUT) cost one attempt each; a short timeout keeps the suite fast
 * (the tests of a scenario run concurrently, so the waits overlap). Loopback answers take
 * well under a millisecond, so a second is a wide margin even on a loaded machine, where
 * the server shares this process's event loop with the resolver.
 */
const TIMEOUT_MS = 1000;

if (!existsSync(SUITE)) {
  describe.skip(`RFC 7208 suite: ${SUITE} is missing (CI clones ../shared beside the repo)`, () => {
    it('needs the suite file', () => {});
  });
} else {
  const scenarios = loadSuite();

  describe('RFC 7208 suite', () => {
    it('has the 16 scenarios and 203 tests of release 2014.04', () => {
      expect(scenarios).toHaveLength(16);
      expect(scenarios.reduce((n, s) => n + Object.keys(s.tests).length, 0)).toBe(203);
    });
  });

  for (const scenario of scenarios) {
    describe.concurrent(`RFC 7208 suite: ${scenario.description}`, () => {
      let server: ZoneServer;
      beforeAll(async () => {
        server = await startZoneServer(scenario.zonedata);
      });
      afterAll(async () => {
        // RFC 7208 §4.4: only TXT is asked for, never type SPF (99)
        expect(server.queries.filter((q) => !/ (TXT|A|AAAA|MX|PTR)$/.test(q))).toEqual([]);
        await server.close();
      });

      for (const [name, test] of Object.entries(scenario.tests)) {
        const key = `${scenario.description} / ${name}`;
        const run = SKIP[key] ? it.skip : it;
        run(`${name}${test.spec ? ` (§${[test.spec].flat().join(', §')})` : ''}`, async ({ expect }) => {
          const dns = new DnsResolver({ servers: [server.address], timeout: TIMEOUT_MS, retries: 1 });
          const r = await checkSpf({ ip: test.host, sender: test.mailfrom ?? '', helo: test.helo }, { dns });
          const acceptable = [test.result].flat();
          expect(acceptable, `${key}: got ${JSON.stringify(r)}`).toContain(r.result);
          if (test.explanation === 'DEFAULT') expect(r.explanation, key).toBeUndefined();
          else if (test.explanation !== undefined) expect(r.explanation, key).toBe(test.explanation);
        });
      }
    });
  }
}
