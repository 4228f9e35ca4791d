import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import { z } from "zod";
import { parseBenchArgs, runMain, USAGE } from "../../../packages/db/bench/harness";

/**
 * `pnpm bench` for the bot: each benchmark bundled the way `build` bundles the
 * bot (esbuild, packages external), then run by plain node in a process of its
 * own, as production runs dist/main.js. The figures are the shipped code's,
 * without a TypeScript loader's time and memory, and one benchmark's heap
 * cannot inflate the next one's. Node runs with the start script's flags (the
 * Procfile and .do/app.yaml run the same), so V8 sizes its heap as in production.
 */

const BENCHMARKS = [
  { file: "tick.ts", node: [] },
  // gc() before each memory sample.
  { file: "memory.ts", node: ["--expose-gc"] },
  { file: "repair.ts", node: [] },
  { file: "startup.ts", node: [] },
  { file: "retention.ts", node: [] },
] as const;

const NAMES = BENCHMARKS.map((b) => b.file.replace(/\.ts$/, ""));
const BOT_USAGE = `${USAGE}
  --only NAME  run one benchmark: ${NAMES.join(", ")} (default: all)`;

/** `--only memory` runs one benchmark; the other arguments go to each benchmark. */
function parseOnly(argv: readonly string[]): { only: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let only: string | undefined;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? "";
    if (arg !== "--only") {
      rest.push(arg);
      continue;
    }
    only = argv[(i += 1)];
    if (only === undefined || !NAMES.includes(only)) throw new Error(`--only takes ${NAMES.join(", ")} (got ${only ?? "nothing"})\n${BOT_USAGE}`);
  }
  return { only, rest };
}

/** The node flags of the bot's start script, `node <flags> dist/main.js`. */
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
  const { only, rest: args } = parseOnly(process.argv.slice(2));
  parseBenchArgs(args); // a bad flag fails here, before anything is built
  const flags = productionNodeFlags();
  const selected = BENCHMARKS.filter((b) => only === undefined || b.file === `${only}.ts`);
  const outdir = path.resolve(__dirname, "../dist/bench");
  await build({
    entryPoints: selected.map((b) => path.join(__dirname, b.file)),
    bundle: true,
    platform: "node",
    target: "node24",
    packages: "external",
    sourcemap: true,
    outdir,
    logLevel: "warning",
  });
  for (const benchmark of selected) {
    await run([...flags, ...benchmark.node, path.join(outdir, benchmark.file.replace(/\.ts$/, ".js")), ...args]);
  }
});
