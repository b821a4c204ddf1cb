/**
 * How much memory a cached answer holds, as an estimate the cache can budget with. It
 * does not have to be exact, but it must grow with what a zone puts in its answers:
 * the record data is the only part a hostile zone controls, so that is what is counted
 * in full, and the rest is a flat overhead per string, per record and per entry.
 */
import type { WireResult } from './answer.js';

/**
 * Two bytes a character: V8 keeps a string two bytes a character as soon as one is
 * outside Latin-1, and a zone can always arrange that (octets that are not UTF-8 decode
 * to U+FFFD). Counting every string that way keeps the budget an upper bound.
 */
const BYTES_PER_CHAR = 2;
/** a string's header and alignment */
const STRING_OVERHEAD = 32;
/** a record's object or array and its slot in the records array */
const RECORD_OVERHEAD = 48;
/** the Map entry, the cache's entry object, the WireResult and its two arrays */
const ENTRY_OVERHEAD = 256;

function stringBytes(s: string): number {
  return STRING_OVERHEAD + BYTES_PER_CHAR * s.length;
}

export function estimateBytes(key: string, result: WireResult): number {
  let bytes = ENTRY_OVERHEAD + stringBytes(key);
  for (const name of result.chain) bytes += stringBytes(name);
  for (const record of result.records) {
    bytes += RECORD_OVERHEAD;
    if (typeof record === 'string') bytes += stringBytes(record);
    else if (Array.isArray(record)) for (const chunk of record) bytes += stringBytes(chunk);
    else bytes += stringBytes(record.exchange);
  }
  return bytes;
}
