import { z } from "zod";

/**
 * Sizes as people write them for a disk or a database plan: "10GB", "500 MB",
 * "1.5TB". Units are binary, as PostgreSQL reads its own settings and prints
 * pg_size_pretty (1 GB = 1024 MB); case does not matter.
 */

const KIB = 1024;
const UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: KIB,
  kib: KIB,
  mb: KIB ** 2,
  mib: KIB ** 2,
  gb: KIB ** 3,
  gib: KIB ** 3,
  tb: KIB ** 4,
  tib: KIB ** 4,
};
/** Far above any database's disk, and still an exact number of bytes in a double. */
const MAX_BYTES = KIB ** 5;
const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;
const UNIT_LIST = "B, kB, MB, GB, TB; 1 GB = 1024 MB";

/** A setting holding a size, parsed to bytes; its messages name `name` and never echo the value. */
export function byteSizeSetting(name: string) {
  return z
    .string()
    .trim()
    .transform((value, ctx): number => {
      const match = SIZE.exec(value);
      const unit = match?.[2] === undefined ? undefined : UNITS[match[2].toLowerCase()];
      const problem = (message: string) => {
        ctx.addIssue({ code: "custom", message });
        return z.NEVER;
      };
      if (match?.[1] === undefined || match[2] === undefined) return problem(`${name} must be a size such as 10GB or 500MB (${UNIT_LIST})`);
      if (match[2] === "") return problem(`${name} needs a unit, such as 10GB or 500MB, not a bare number (${UNIT_LIST})`);
      if (unit === undefined) return problem(`${name} has an unknown unit; use one of ${UNIT_LIST}, such as 10GB`);
      const bytes = Math.round(Number(match[1]) * unit);
      if (bytes < 1) return problem(`${name} must be more than 0; unset it to go without one`);
      if (bytes > MAX_BYTES) return problem(`${name} must be at most 1024TB`);
      return bytes;
    });
}
