import { readFileSync, readdirSync } from "node:fs";

/**
 * CPU time of the two sides of a tick, to read its wall time against: on a
 * machine with N cores a tick cannot take less than (bot CPU + PostgreSQL CPU) / N,
 * and the sum says how much work a tick is wherever the machine's speed differs.
 */

/** CPU time (ms) this process has used so far. */
export function processCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ). */
const MS_PER_CLOCK_TICK = 10;

/**
 * CPU time (ms) used so far by the PostgreSQL backends connected to `database`,
 * read from /proc (each backend's command line names its database). Undefined
 * when none is visible: the server runs on another machine, or not on Linux.
 */
export function postgresCpuMs(database: string): number | undefined {
  let total: number | undefined;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    try {
      // "postgres: 15/main: postgres candlekeep_bench_1a2b3c 127.0.0.1(40000) idle"
      const command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!command.startsWith("postgres:") || !command.split(" ").includes(database)) continue;
      // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      total = (total ?? 0) + (Number(fields[11]) + Number(fields[12])) * MS_PER_CLOCK_TICK;
    } catch {
      // The process ended between listing and reading, or is not ours to read.
    }
  }
  return total;
}
