import { daysBack, type RepairOptions } from "../history/repair";
import type { BotRuntime } from "../runtime";

/** The options `backfill --days N` runs the repair with (main.ts), at the runtime's market clock, without a terminal. */
export function backfillDays(rt: BotRuntime, days: number): RepairOptions {
  return { startFor: daysBack(rt.market.now(), days), after: true, tty: false };
}
