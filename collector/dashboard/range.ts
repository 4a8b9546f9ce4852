// Time ranges from query strings, for the dashboard and the API alike: UTC days (what a date input
// sends) or ISO 8601 times with an offset. A "to" day counts whole, so from=2025-01-01&to=2025-01-31
// is all of January. Stored timestamps are compared as text, so every bound is made canonical
// (toISOString) first: "…:45Z", "…:45.000Z" and "…:45+00:00" must select the same records.
import type { Range } from '../dashboard-types.ts';

const DAY_MS = 86_400_000;

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
// RFC 3339's profile of ISO 8601: a time without an offset would be read in the collector's own
// zone, which no caller can know, so it is refused rather than guessed.
const TIME = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,9})?)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** Whether year-month-day names a real day: Date.parse rolls 2025-02-30 over into March. */
function realDay(y: string, m: string, d: string): boolean {
  const t = new Date(0);
  // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999.
  t.setUTCFullYear(Number(y), Number(m) - 1, Number(d));
  return t.getUTCFullYear() === Number(y) && t.getUTCMonth() === Number(m) - 1 && t.getUTCDate() === Number(d);
}

/** A from/to value as a canonical ISO time; undefined when absent, null when it is not an ISO 8601 date or date-time. */
export function isoOf(value: string | null | undefined, isTo: boolean): string | undefined | null {
  const v = value?.trim();
  if (!v) return undefined;
  const day = DAY.exec(v);
  if (day) {
    if (!realDay(day[1], day[2], day[3])) return null;
    return new Date(Date.parse(`${v}T00:00:00.000Z`) + (isTo ? DAY_MS : 0)).toISOString();
  }
  const time = TIME.exec(v);
  if (!time || !realDay(time[1], time[2], time[3])) return null;
  return new Date(Date.parse(v)).toISOString();
}

/** ?from&to as a range, by default the 30 days up to `now`; undefined when invalid or empty. */
export function rangeOf(url: URL, now: Date): Range | undefined {
  const from = isoOf(url.searchParams.get('from'), false);
  const to = isoOf(url.searchParams.get('to'), true);
  if (from === null || to === null) return undefined;
  const end = to ?? now.toISOString();
  const start = from ?? new Date(Date.parse(end) - 30 * DAY_MS).toISOString();
  return start < end ? { from: start, to: end } : undefined;
}

/** The UTC days a range's date inputs show (the inverse of rangeOf for whole days). */
export function rangeDays(range: Range): { from: string; to: string } {
  return { from: range.from.slice(0, 10), to: new Date(Date.parse(range.to) - 1).toISOString().slice(0, 10) };
}
