import path from "node:path";
import { figureValues, runSmokeBenchmark } from "./testing";

/**
 * Keeps `pnpm bench` working: runs the write and history benchmarks in their
 * --smoke mode (tiny sizes, one repetition) end to end and checks that every
 * figure came out. It asserts no time: speed is measured by `pnpm bench`, not by CI.
 */

const PACKAGE_DIR = path.resolve(__dirname, "..");

// Smoke sizes: 5 coins in the comparison, 2, 5 and 10 coins in the scaling rows (bench/writes.ts).
const EXPECTED = [
  "server.saveCandles.fresh",
  "server.createMany.fresh",
  "server.copy.fresh",
  "server.saveCandles.duplicates",
  "server.createMany.duplicates",
  ...[2, 5, 10].flatMap((coins) => [`scaling.${coins}.saveCandles`, `scaling.${coins}.copy`]),
  "embedded.saveCandles.fresh",
  "embedded.createMany.fresh",
  "embedded.saveCandles.duplicates",
  "embedded.createMany.duplicates",
];

// Smoke size: 10 days × 3 coins × 4 timeframes (bench/history.ts).
const EXPECTED_HISTORY = ["history.count", "history.first", "history.repeat"];

it("runs the write and history benchmarks in --smoke mode and reports every figure", async () => {
  const tsc = require.resolve("typescript/bin/tsc");
  const results = await runSmokeBenchmark((out) => [
    // The benchmark measures the built package (as the bot runs it), so build it first.
    [process.execPath, [tsc, "-p", "tsconfig.build.json"], PACKAGE_DIR],
    [process.execPath, [tsc, "-p", "bench/tsconfig.json"], PACKAGE_DIR],
    [process.execPath, ["dist/bench/main.js", "--smoke", "--out", out], PACKAGE_DIR],
  ]);
  const section = results.sections.writes;
  expect(section?.smoke).toBe(true);
  const figures = figureValues(section);
  expect([...figures.keys()].sort()).toEqual([...EXPECTED].sort());
  for (const id of EXPECTED) expect(Number.isFinite(figures.get(id))).toBe(true);
  const history = results.sections.history;
  expect(history?.smoke).toBe(true);
  const historyFigures = figureValues(history);
  expect([...historyFigures.keys()].sort()).toEqual([...EXPECTED_HISTORY].sort());
  for (const id of EXPECTED_HISTORY) expect(Number.isFinite(historyFigures.get(id))).toBe(true);
}, 180_000);
