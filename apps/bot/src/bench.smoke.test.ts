import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

/**
 * Keeps `pnpm bench` working: runs the bot's benchmarks (tick, memory) in their
 * --smoke mode (tiny sizes) end to end and checks that every figure came out.
 * It asserts no time and no size: those are measured by `pnpm bench`, not by CI.
 */

const run = promisify(execFile);
const PACKAGE_DIR = path.resolve(__dirname, "..");

// Smoke sizes: ticks at 5 and 10 coins (bench/tick.ts).
const EXPECTED: Record<string, string[]> = {
  tick: [5, 10].flatMap((coins) => [`tick.${coins}`, `tick.${coins}.rowsWritten`, `start.${coins}`]),
  memory: ["memory.start.rss", "memory.rss", "memory.heap", "memory.heap.growth", "memory.rss.growth"],
};

interface SmokeSection {
  smoke: boolean;
  figures: { id: string; value: number }[];
}

it("runs the tick and memory benchmarks in --smoke mode and reports every figure", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-bench-"));
  try {
    const out = path.join(dir, "results.json");
    await run(path.join(PACKAGE_DIR, "node_modules/.bin/tsx"), ["bench/main.ts", "--smoke", "--out", out], { cwd: PACKAGE_DIR });

    const results: { sections: Record<string, SmokeSection> } = JSON.parse(fs.readFileSync(out, "utf8"));
    for (const [name, ids] of Object.entries(EXPECTED)) {
      const section = results.sections[name];
      expect(section?.smoke).toBe(true);
      const figures = new Map((section?.figures ?? []).map((f) => [f.id, f.value]));
      expect([...figures.keys()].sort()).toEqual([...ids].sort());
      for (const id of ids) expect(Number.isFinite(figures.get(id))).toBe(true);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
