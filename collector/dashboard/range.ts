// Time ranges from query strings: UTC days (what a date input sends) or ISO times. A "to" day counts
// whole, so from=2025-01-01&to=2025-01-31 is all of January.
import type { Range } from '../dashboard-types.ts';

const DAY_MS = 86_400_000;

/** A from/to value as an ISO time; undefined when absent, null when it is not a date or time. */
export function isoOf(value: string | null | undefined, isTo: boolean): string | undefined | null {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const t = Date.parse(`${v}T00:00:00.000Z`);
    return Number.isNaN(t) ? null : new Date(t + (isTo ? DAY_MS : 0)).toISOString();
  }
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
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
