import { spawn } from "node:child_process";
import path from "node:path";
import { build } from "esbuild";
import { parseBenchArgs, runMain } from "../../../packages/db/bench/harness";

/**
 * `pnpm bench` for the bot: each benchmark bundled the way `build` bundles the
 * bot (esbuild, packages external), then run by plain node in a process of its
 * own, as production runs dist/main.js. The figures are the shipped code's,
 * without a TypeScript loader's time and memory, and one benchmark's heap
 * cannot inflate the next one's.
 */

const BENCHMARKS = [
  { file: "tick.ts", node: [] },
  // gc() before each memory sample.
  { file: "memory.ts", node: ["--expose-gc"] },
  { file: "repair.ts", node: [] },
  { file: "startup.ts", node: [] },
  { file: "retention.ts", node: [] },
] as const;

function run(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${args.join(" ")} exited with ${signal ?? code}`))));
  });
}

runMain(async () => {
  const args = process.argv.slice(2);
  parseBenchArgs(args); // a bad flag fails here, before anything is built
  const outdir = path.resolve(__dirname, "../dist/bench");
  await build({
    entryPoints: BENCHMARKS.map((b) => path.join(__dirname, b.file)),
    bundle: true,
    platform: "node",
    target: "node24",
    packages: "external",
    sourcemap: true,
    outdir,
    logLevel: "warning",
  });
  for (const benchmark of BENCHMARKS) {
    await run([...benchmark.node, "--enable-source-maps", path.join(outdir, benchmark.file.replace(/\.ts$/, ".js")), ...args]);
  }
});
