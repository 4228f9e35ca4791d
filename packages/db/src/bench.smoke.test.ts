import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

/**
 * Keeps `pnpm bench` working: runs the write benchmark in its --smoke mode
 * (tiny sizes, one repetition) end to end and checks that every figure came
 * out. It asserts no time: speed is measured by `pnpm bench`, not by CI.
 */

const run = promisify(execFile);
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

interface SmokeFigure {
  id: string;
  value: number;
}

it("runs the write benchmark in --smoke mode and reports every figure", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-bench-"));
  try {
    const out = path.join(dir, "results.json");
    const tsc = require.resolve("typescript/bin/tsc");
    // The benchmark measures the built package (as the bot runs it), so build it first.
    await run(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: PACKAGE_DIR });
    await run(process.execPath, [tsc, "-p", "bench/tsconfig.json"], { cwd: PACKAGE_DIR });
    await run(process.execPath, ["dist/bench/main.js", "--smoke", "--out", out], { cwd: PACKAGE_DIR });

    const results: { sections: Record<string, { smoke: boolean; figures: SmokeFigure[] }> } = JSON.parse(fs.readFileSync(out, "utf8"));
    const section = results.sections.writes;
    expect(section?.smoke).toBe(true);
    const figures = new Map((section?.figures ?? []).map((f) => [f.id, f.value]));
    expect([...figures.keys()].sort()).toEqual([...EXPECTED].sort());
    for (const id of EXPECTED) expect(Number.isFinite(figures.get(id))).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
