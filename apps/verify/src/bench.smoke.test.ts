import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

/**
 * Keeps `pnpm bench` working: runs verify's benchmark in its --smoke mode (5
 * coins) end to end, the built CLI included, and checks that every figure came
 * out. It asserts no time: speed is measured by `pnpm bench`, not by CI.
 */

const run = promisify(execFile);
const PACKAGE_DIR = path.resolve(__dirname, "..");
const CHECKS = ["connection", "migrations", "schema", "roundtrip", "coverage", "activity"];
const EXPECTED = ["verify.fresh", "verify.settled", "verify.cli", "verify.fill", ...["fresh", "settled"].flatMap((state) => CHECKS.map((check) => `verify.${state}.check.${check}`))];

it("runs the verify benchmark in --smoke mode and reports every figure", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-bench-"));
  try {
    const out = path.join(dir, "results.json");
    // The CLI figure runs dist/main.js: build it as `pnpm bench` does (turbo runs build first).
    await run("pnpm", ["run", "--silent", "build"], { cwd: PACKAGE_DIR });
    await run(path.join(PACKAGE_DIR, "node_modules/.bin/tsx"), ["bench/verify.ts", "--smoke", "--out", out], { cwd: PACKAGE_DIR });

    const results: { sections: Record<string, { smoke: boolean; figures: { id: string; value: number }[] }> } = JSON.parse(fs.readFileSync(out, "utf8"));
    const section = results.sections.verify;
    expect(section?.smoke).toBe(true);
    const figures = new Map((section?.figures ?? []).map((f) => [f.id, f.value]));
    expect([...figures.keys()].sort()).toEqual([...EXPECTED].sort());
    for (const id of EXPECTED) expect(Number.isFinite(figures.get(id))).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
