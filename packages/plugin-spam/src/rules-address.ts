/**
 * The mailbox in an address header as rules need it: display name, address, domain.
 * Deliberately forgiving (spam is rarely RFC 5322-clean) and bounded: only the first
 * MAX_FIELD characters of a field are looked at.
 */
const MAX_FIELD = 2_000;

export interface Mailbox {
  /** The display name without quotes ('' when there is none). */
  name: string;
  /** The address as written, lower case. */
  address: string;
  /** The part after the last '@', lower case ('' when there is none). */
  domain: string;
}

/** `"Ann" <Ann@Example.com>`, `ann@example.com (Ann)` → { name, address, domain }; undefined without an address. */
export function parseMailbox(field: string): Mailbox | undefined {
  const value = field.slice(0, MAX_FIELD);
  const lt = value.lastIndexOf('<');
  const gt = lt < 0 ? -1 : value.indexOf('>', lt);
  let name: string;
  let address: string;
  if (lt >= 0 && gt > lt) {
    address = value.slice(lt + 1, gt);
    name = value.slice(0, lt);
  } else {
    const comment = /\(([^()]*)\)/.exec(value);
    name = comment?.[1] ?? '';
    address = value.replace(/\([^()]*\)/g, ' ');
  }
  address = address.trim().toLowerCase();
  if (address.length === 0) return undefined;
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? '' : address.slice(at + 1).replace(/[\s>,;].*$/, '');
  name = name.trim().replace(/^"(.*)"$/s, '$1').trim();
  return { name, address, domain };
}

/** The first thing that looks like an e-mail address in `text`, lower case. */
export function findAddress(text: string): string | undefined {
  const bounded = text.slice(0, MAX_FIELD);
  // cheap gate: the regex below scans every run of address characters
  if (!bounded.includes('@')) return undefined;
  return /[a-z0-9._%+'-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+/i.exec(bounded)?.[0]?.toLowerCase();
}
