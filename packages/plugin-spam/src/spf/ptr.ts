/**
 * Validated client host names (RFC 7208 §5.5), for the `ptr` mechanism and %{p}: the
 * PTR names of the client address whose A/AAAA records include that address. Only the
 * first 10 PTR names are looked at, and a DNS error on one name skips that name.
 * Results are kept per check, so several `ptr` terms and %{p} cost one PTR query and
 * at most one address query per name.
 */
import { SpfError } from './errors.js';
import { addressBytes, inNetwork, reverseLookupName, type ClientIp } from './ip.js';
import type { SpfLookups } from './lookups.js';

export const MAX_PTR_NAMES = 10;

export interface PtrCache {
  /** the first PTR names ('error' when the PTR lookup failed) */
  names?: Promise<string[] | 'error'>;
  validated: Map<string, Promise<boolean>>;
}

export function newPtrCache(): PtrCache {
  return { validated: new Map() };
}

/** The client's PTR names (lower case, no trailing dot), at most 10; 'error' on a DNS failure. */
export function ptrNames(cache: PtrCache, lookups: SpfLookups, ip: ClientIp): Promise<string[] | 'error'> {
  cache.names ??= lookups.query(reverseLookupName(ip), 'PTR').then(
    (names) => names.slice(0, MAX_PTR_NAMES).map((n) => n.toLowerCase().replace(/\.$/, '')),
    (err: unknown) => {
      // §5.5: a DNS error on the PTR lookup means "no match"; an abort or our own limit is not that
      if (err instanceof SpfError && err.result === 'temperror') return 'error' as const;
      throw err;
    },
  );
  return cache.names;
}

/** Does `name` have an address record equal to the client's? DNS errors count as "no" (§5.5). */
export function isValidated(cache: PtrCache, lookups: SpfLookups, ip: ClientIp, name: string): Promise<boolean> {
  let result = cache.validated.get(name);
  if (!result) {
    result = lookups.query(name, ip.version === 4 ? 'A' : 'AAAA').then(
      (addresses) =>
        addresses.some((a) => {
          const bytes = addressBytes(a);
          return bytes !== undefined && inNetwork(bytes, ip.bytes, ip.bytes.length * 8);
        }),
      (err: unknown) => {
        if (err instanceof SpfError && err.result === 'temperror') return false;
        throw err;
      },
    );
    cache.validated.set(name, result);
  }
  return result;
}

/** Is `name` equal to `domain` or below it (case-insensitive)? */
export function isAtOrBelow(name: string, domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return name === d || name.endsWith(`.${d}`);
}

/**
 * %{p}: a validated name, preferring `domain` itself, then a name below it, then any
 * (§7.3); "unknown" when there is none.
 */
export async function validatedPtrName(cache: PtrCache, lookups: SpfLookups, ip: ClientIp, domain: string): Promise<string> {
  const names = await ptrNames(cache, lookups, ip);
  if (names === 'error') return 'unknown';
  const d = domain.toLowerCase().replace(/\.$/, '');
  const ordered = [...names.filter((n) => n === d), ...names.filter((n) => n !== d && isAtOrBelow(n, d)), ...names.filter((n) => !isAtOrBelow(n, d))];
  for (const name of ordered) if (await isValidated(cache, lookups, ip, name)) return name;
  return 'unknown';
}
