// The printed result: a Markdown table (what README's Scale section holds) plus detail lines.

export interface Row {
  readonly figure: string;
  readonly measured: string;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(rows: readonly Row[]): string {
  const lines = ['| figure | measured |', '| --- | --- |'];
  for (const r of rows) lines.push(`| ${cell(r.figure)} | ${cell(r.measured)} |`);
  return lines.join('\n');
}

/** `create networkpolicies 2000, patch encryptedservices/status 1000` or `none`. */
export function countsText(counts: ReadonlyArray<readonly [string, number]>, per = 1): string {
  if (counts.length === 0) return 'none';
  const f = (n: number): string => (per === 1 ? String(n) : (n / per).toFixed(2));
  return counts.map(([k, n]) => `${k} ${f(n)}`).join(', ');
}

export const ratio = (a: number, b: number): string => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)} ×` : 'n/a');
