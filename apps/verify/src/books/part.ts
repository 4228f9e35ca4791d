/**
 * What one part of the books check found. Failures and warnings are one line
 * each naming the coin or order and the numbers that differ; notes say what was
 * not compared and why; lookInto says where to look when something differs.
 */
export interface BooksPart {
  /** A short phrase for the summary line when nothing failed. */
  summary: string;
  failures: string[];
  warnings: string[];
  notes: string[];
  lookInto: string[];
  data: Record<string, unknown>;
}

/** A value as an SQL literal, for the queries a report suggests running. */
export const sqlLiteral = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** A signed amount: "+0.5", "−0.25". */
export const signed = (value: number | string) => {
  const text = String(value);
  return text.startsWith("-") ? `−${text.slice(1)}` : `+${text}`;
};

/** A double as at most 15 significant digits: the sum 10000 + −50.5505 reads 9949.4495, not 9949.449499999999. */
export const amount = (value: number) => String(Number(value.toPrecision(15)));
