// How the dashboard writes numbers, money, durations and times: fixed locale and rules, so pages
// and charts render the same text for the same data.

const INTEGER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 12,345 */
export function count(n: number): string {
  return INTEGER.format(n);
}

/** $1,234.56; cents keep up to four decimals ($0.60, $0.0042), smaller amounts three digits. */
export function usd(n: number): string {
  if (n === 0) return '$0';
  const abs = Math.abs(n);
  const text = abs >= 1
    ? abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })
    : abs >= 0.01
      ? abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 })
      : abs.toLocaleString('en-US', { maximumSignificantDigits: 3 });
  return `${n < 0 ? '-' : ''}$${text}`;
}

/** 1.2k, 3.4M: for axis labels. */
export function compact(n: number): string {
  const abs = Math.abs(n);
  for (const [size, suffix] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const) {
    if (abs >= size) return `${trim(n / size)}${suffix}`;
  }
  return trim(n);
}

function trim(n: number): string {
  return Number(n.toFixed(Math.abs(n) >= 10 || Number.isInteger(n) ? 0 : 2)).toString();
}

/** 850 ms, 2.4 s */
export function ms(n: number): string {
  return n >= 1_000 ? `${(n / 1_000).toFixed(n >= 10_000 ? 0 : 1)} s` : `${Math.round(n)} ms`;
}

/** 2025-01-31 14:05:09 UTC from an ISO timestamp (the input itself when it does not parse). */
export function when(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
