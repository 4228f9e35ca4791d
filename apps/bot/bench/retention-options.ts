import { USAGE, type BenchOptions } from "../../../packages/db/bench/harness";

/**
 * The retention benchmark's own flag, `--days N`: how many days of traces it stores. Read here, not
 * by parseBenchArgs (the options every benchmark shares), so bench/main.ts can check it before
 * building anything and hand it to the retention benchmark alone.
 */

/**
 * Half a year at 500 coins (26 M traces, ~12 GB a layout at the 452 bytes a trace measured on
 * 2026-12-05, docs/performance.md). A day's delete reads the same rows whatever the table's size;
 * its B-tree descents are one level shorter at most.
 */
export const FULL_DAYS = 180;
const SMOKE_DAYS = 3;

export const DAYS_USAGE = `  --days N    days of decision traces the retention benchmark stores (default ${FULL_DAYS}, smoke ${SMOKE_DAYS});
              above --repeat: each repetition removes one day and one must remain`;

/** `--days N` taken out of `argv` (its value unchecked), and the other arguments for parseBenchArgs. */
export function takeDaysFlag(argv: readonly string[]): { days: string | undefined; rest: string[] } {
  let days: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? "";
    if (arg === "--days") {
      const value = argv[(i += 1)];
      if (value === undefined) throw new Error(`--days needs a number of days\n${USAGE}\n${DAYS_USAGE}`);
      days = value;
    } else rest.push(arg);
  }
  return { days, rest };
}

/** The days to store: `--days`' value, or the mode's default, checked against the repetitions. */
export function retentionDays(days: string | undefined, options: Pick<BenchOptions, "smoke" | "repeat">): number {
  const n = days === undefined ? (options.smoke ? SMOKE_DAYS : FULL_DAYS) : Number(days);
  const least = options.repeat + 1;
  if (days?.trim() === "" || !Number.isInteger(n) || n < least) {
    const given = days === undefined ? `${n}, the default` : `"${days}"`;
    throw new Error(`--days must be a whole number ≥ ${least} (${options.repeat} repetitions remove a day each, and one must remain); got ${given}\n${USAGE}\n${DAYS_USAGE}`);
  }
  return n;
}
