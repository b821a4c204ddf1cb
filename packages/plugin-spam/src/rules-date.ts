/**
 * RFC 5322 §3.3 dates, strictly enough for INVALID_DATE (SpamAssassin's pattern: an
 * optional day name, day, month name, 2-4 digit year, hh:mm[:ss], a zone) and without
 * Date.parse, which accepts nearly anything and reads it in the local time zone.
 */
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** RFC 5322 §4.3 obsolete zones; military letters "SHOULD be considered equivalent to -0000". */
const ZONES: Record<string, number> = { ut: 0, gmt: 0, z: 0, est: -5, edt: -4, cst: -6, cdt: -5, mst: -7, mdt: -6, pst: -8, pdt: -7 };

const DATE =
  /^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\s*,?\s*)?(\d{1,2})\s+([a-z]{3})[a-z]*\.?\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4}|[a-z]{1,3})(?:\s*\([^()]*\))?$/;

/** Milliseconds since the epoch, or undefined when `value` is not an RFC 5322 date. */
export function parseMailDate(value: string): number | undefined {
  const text = value.trim().toLowerCase();
  if (text.length > 120) return undefined;
  const m = DATE.exec(text);
  if (!m) return undefined;
  const [, dayText, monthText, yearText, hourText, minuteText, secondText, zoneText] = m;
  const month = MONTHS.indexOf(monthText ?? '');
  let year = Number(yearText);
  // RFC 5322 §4.3: two-digit years 00-49 are 20xx, 50-99 and three digits are 19xx
  if (yearText!.length === 2) year += year < 50 ? 2000 : 1900;
  else if (yearText!.length === 3) year += 1900;
  const day = Number(dayText);
  const hour = Number(hourText);
  const minute = Number(minuteText);
  const second = secondText === undefined ? 0 : Number(secondText);
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMinutes: number;
  if (/^[+-]\d{4}$/.test(zoneText!)) {
    const hh = Number(zoneText!.slice(1, 3));
    const mm = Number(zoneText!.slice(3, 5));
    if (mm > 59) return undefined;
    offsetMinutes = (zoneText!.startsWith('-') ? -1 : 1) * (hh * 60 + mm);
  } else if (zoneText! in ZONES) offsetMinutes = ZONES[zoneText!]! * 60;
  else if (/^[a-ik-y]$/.test(zoneText!)) offsetMinutes = 0;
  else return undefined;
  const utc = Date.UTC(year, month, day, hour, minute, second);
  // 31 Feb rolls over in Date.UTC: refuse it rather than score a date nobody wrote
  if (new Date(utc).getUTCDate() !== day) return undefined;
  return utc - offsetMinutes * 60_000;
}
