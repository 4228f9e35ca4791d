import { amount } from "../check";

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

/** A signed amount: "+0.5", "−0.25"; a number as `amount` writes it, a string (exact, from SQL) as it is. */
export const signed = (value: number | string) => {
  const text = typeof value === "number" ? amount(value) : value;
  return text.startsWith("-") ? `−${text.slice(1)}` : `+${text}`;
};
