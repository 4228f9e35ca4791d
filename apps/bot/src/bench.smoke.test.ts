import path from "node:path";
import { figureValues, runSmokeBenchmark } from "@candlekeep/db/testing";
import { TICK_PHASES } from "./tick";

/**
 * Keeps `pnpm bench` working: type-checks the bot's benchmarks, runs them (tick,
 * memory, repair, startup, retention) in their --smoke mode (tiny sizes) end to end and checks that every
 * figure came out.
 * It asserts no time and no size: those are measured by `pnpm bench`, not by CI.
 */

const PACKAGE_DIR = path.resolve(__dirname, "..");

// Smoke sizes: catch-up ticks at 5 and 10 coins, live-cadence ticks at 10 (bench/tick.ts).
const EXPECTED: Record<string, string[]> = {
  // The PostgreSQL CPU figures need the server on this machine, as the test set-up has it.
  tick: [
    ...["tick.5", "tick.10", "tick.live.10"].flatMap((id) => [
      id,
      `${id}.cpu.bot`,
      `${id}.cpu.postgres`,
      `${id}.cpu.floor`,
      ...TICK_PHASES.map((phase) => `${id}.phase.${phase}`),
      `${id}.rowsWritten`,
      `${id}.eventsWritten`,
    ]),
    "start.5",
    "start.10",
  ],
  memory: ["memory.start.rss", "memory.rss", "memory.heap", "memory.heap.growth", "memory.rss.growth"],
  repair: ["repair.fetched", "repair.ms"],
  // Smoke sizes: restarts at 5 coins, a fresh start at 10, the backfill against COPY at 5 (bench/startup.ts).
  startup: [
    ...["", ".restore", ".backfill", ".firstTick"].map((part) => `startup.restart.5${part}`),
    ...["", ".restore", ".backfill", ".firstTick", ".rows"].map((part) => `startup.fresh.10${part}`),
    "backfill.5",
    "backfill.5.copy",
    "backfill.5.cpu.bot",
    "backfill.5.cpu.postgres",
  ],
  retention: [
    "trace.bytes.payload",
    "trace.bytes.row",
    "trace.bytes.disk",
    "candle.bytes.row",
    "candle.bytes.disk",
    "retention.delete.day",
    "retention.delete.statement",
    "retention.vacuum.day",
    "retention.drop.day",
    "tick.base",
    "tick.duringPass",
    "read.latest.plain",
    "read.latest.partitioned",
  ],
};

it("runs the tick, memory, repair, start-up and retention benchmarks in --smoke mode and reports every figure", async () => {
  const results = await runSmokeBenchmark((out) => [
    // esbuild bundles the benchmarks without checking their types: check them here.
    [process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "bench/tsconfig.json"], PACKAGE_DIR],
    [path.join(PACKAGE_DIR, "node_modules/.bin/tsx"), ["bench/main.ts", "--smoke", "--out", out], PACKAGE_DIR],
  ]);
  for (const [name, ids] of Object.entries(EXPECTED)) {
    const section = results.sections[name];
    expect(section?.smoke).toBe(true);
    const figures = figureValues(section);
    expect([...figures.keys()].sort()).toEqual([...ids].sort());
    for (const id of ids) expect(Number.isFinite(figures.get(id))).toBe(true);
  }
}, 180_000);
