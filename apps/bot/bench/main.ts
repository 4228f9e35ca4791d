import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import { z } from "zod";
import { parseBenchArgs, runMain, USAGE } from "../../../packages/db/bench/harness";
import { DAYS_USAGE, retentionDays, takeDaysFlag } from "./retention-options";

/**
 * `pnpm bench` for the bot: each benchmark bundled the way `build` bundles the
 * bot (esbuild, packages external), then run by plain node in a process of its
 * own, as production runs dist/main.js. The figures are the shipped code's,
 * without a TypeScript loader's time and memory, and one benchmark's heap
 * cannot inflate the next one's.
 */

const BENCHMARKS = [
  { name: "tick", node: [] },
  // gc() before each memory sample.
  { name: "memory", node: ["--expose-gc"] },
  { name: "repair", node: [] },
  { name: "startup", node: [] },
  { name: "retention", node: [] },
] as const;
type Benchmark = (typeof BENCHMARKS)[number]["name"];
const NAMES = BENCHMARKS.map((b) => b.name);

const BOT_USAGE = `${USAGE}
  --only NAME run one benchmark: ${NAMES.join(", ")} (default: all)
${DAYS_USAGE}`;

/** `--only NAME` taken out of `argv`, and the other arguments. */
function takeOnlyFlag(argv: readonly string[]): { only: Benchmark | undefined; rest: string[] } {
  let only: Benchmark | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? "";
    if (arg === "--only") {
      const name = argv[(i += 1)];
      only = NAMES.find((n) => n === name);
      if (only === undefined) throw new Error(`--only takes ${NAMES.join(", ")} (got ${name ?? "nothing"})\n${BOT_USAGE}`);
    } else rest.push(arg);
  }
  return { only, rest };
}

/** The node flags of the bot's start script, `node <flags> dist/main.js`: the benchmarks measure what production runs. */
function productionNodeFlags(): string[] {
  const manifest = z.object({ scripts: z.object({ start: z.string() }) }).parse(JSON.parse(fs.readFileSync(path.resolve(__dirname, "../package.json"), "utf8")));
  const [node, ...rest] = manifest.scripts.start.split(/\s+/);
  if (node !== "node" || rest.pop() !== "dist/main.js") throw new Error(`the bot's start script is not "node <flags> dist/main.js": ${manifest.scripts.start}`);
  return rest;
}

function run(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${args.join(" ")} exited with ${signal ?? code}`))));
  });
}

runMain(async () => {
  // A bad flag fails here, before anything is built.
  const { only, rest } = takeOnlyFlag(process.argv.slice(2));
  const { days, rest: shared } = takeDaysFlag(rest);
  const options = parseBenchArgs(shared);
  const benchmarks = BENCHMARKS.filter((b) => only === undefined || b.name === only);
  if (benchmarks.some((b) => b.name === "retention")) retentionDays(days, options);
  const flags = productionNodeFlags();
  const outdir = path.resolve(__dirname, "../dist/bench");
  await build({
    entryPoints: benchmarks.map((b) => path.join(__dirname, `${b.name}.ts`)),
    bundle: true,
    platform: "node",
    target: "node24",
    packages: "external",
    sourcemap: true,
    outdir,
    logLevel: "warning",
  });
  for (const benchmark of benchmarks) {
    // --days is the retention benchmark's alone; the others take the shared flags.
    const args = benchmark.name === "retention" && days !== undefined ? [...shared, "--days", days] : shared;
    await run([...flags, ...benchmark.node, path.join(outdir, `${benchmark.name}.js`), ...args]);
  }
});
