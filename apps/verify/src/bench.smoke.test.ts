import path from "node:path";
import { figureValues, runSmokeBenchmark } from "@candlekeep/db/testing";

/**
 * Keeps `pnpm bench` working: runs verify's benchmark in its --smoke mode (5
 * coins) end to end, the built CLI included, and checks that every figure came
 * out. It asserts no time: speed is measured by `pnpm bench`, not by CI.
 */

const PACKAGE_DIR = path.resolve(__dirname, "..");
const CHECKS = ["connection", "migrations", "schema", "roundtrip", "coverage", "history", "activity", "books", "storage"];
const EXPECTED = [
  ...["verify.fresh", "verify.settled", "verify.cli", "verify.fill", "verify.long", "verify.long.check.coverage", "verify.fill.long"],
  ...["fresh", "settled"].flatMap((state) => CHECKS.map((check) => `verify.${state}.check.${check}`)),
];

it("runs the verify benchmark in --smoke mode and reports every figure", async () => {
  const results = await runSmokeBenchmark((out) => [
    // The CLI figure runs dist/main.js: build it as `pnpm bench` does (turbo runs build first).
    ["pnpm", ["run", "--silent", "build"], PACKAGE_DIR],
    // tsx runs the benchmark without checking its types: check them here.
    [process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "bench/tsconfig.json"], PACKAGE_DIR],
    [path.join(PACKAGE_DIR, "node_modules/.bin/tsx"), ["bench/verify.ts", "--smoke", "--out", out], PACKAGE_DIR],
  ]);
  const section = results.sections.verify;
  expect(section?.smoke).toBe(true);
  const figures = figureValues(section);
  expect([...figures.keys()].sort()).toEqual([...EXPECTED].sort());
  for (const id of EXPECTED) expect(Number.isFinite(figures.get(id))).toBe(true);
}, 180_000);
