import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";

/**
 * The small harness every package's bench/ shares: repeated timing with
 * warm-up, medians and percentiles, the printed table and the results file.
 * Benchmarks report figures and whether a goal is met; they never fail on a
 * time (CI runs only the --smoke mode, which checks that every figure exists).
 */

export interface BenchOptions {
  /** Tiny sizes, one repetition: proves the code runs, measures nothing. */
  smoke: boolean;
  /** Where the results file is written (merged by section). */
  out: string;
  /** Timed repetitions per figure (after the warm-up). */
  repeat: number;
  /** Untimed runs first, so JIT compilation and cold caches are excluded. */
  warmup: number;
}

export interface Goal {
  /** Human statement, e.g. "≤ 2× COPY". */
  text: string;
  met: boolean;
}

export interface Figure {
  /** Stable key in the results file, e.g. "server.saveCandles.fresh". */
  id: string;
  label: string;
  /** Median of the timed runs (or the single measured value). */
  value: number;
  unit: "ms" | "MB" | "MB/tick" | "rows" | "bytes";
  p95?: number;
  /** The value divided by a reference measured in the same run, with the reference's name. */
  ratio?: { value: number; to: string };
  goal?: Goal;
  samples?: number[];
}

export interface Section {
  name: string;
  title: string;
  measuredAt: string;
  smoke: boolean;
  repetitions: number;
  settings: Record<string, string | number | boolean>;
  figures: Figure[];
}

export interface ResultsFile {
  machine: MachineInfo;
  sections: Record<string, Section>;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  /** PostgreSQL server version, filled in by the benchmark that talks to it. */
  postgres?: string;
}

/** The repository root: this file is packages/db/bench/harness.ts (or its compiled copy under dist/bench). */
export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "pnpm-workspace.yaml"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

export const USAGE = `Usage: pnpm bench [-- --smoke] [--out FILE] [--repeat N]
  --smoke     tiny sizes and one repetition (CI); figures are not meaningful
  --out FILE  results file (default: <repo>/bench/results.json; sections are merged)
  --repeat N  timed repetitions per figure (default 5, smoke 1)`;

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  // pnpm and turbo pass a literal "--" through.
  const args = argv.filter((arg) => arg !== "--");
  let smoke = false;
  let out = path.join(repoRoot(), "bench", "results.json");
  let repeat: number | undefined;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === "--smoke") smoke = true;
    else if (arg === "--out" && args[i + 1] !== undefined) out = path.resolve(args[(i += 1)] as string);
    else if (arg === "--repeat" && args[i + 1] !== undefined) repeat = Number(args[(i += 1)]);
    else throw new Error(`unknown argument "${arg}"\n${USAGE}`);
  }
  if (repeat !== undefined && (!Number.isInteger(repeat) || repeat < 1)) throw new Error(`--repeat must be a whole number ≥ 1\n${USAGE}`);
  return { smoke, out, repeat: repeat ?? (smoke ? 1 : 5), warmup: smoke ? 0 : 1 };
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

/** Milliseconds `fn` takes, with `setup` run untimed before it. */
export async function timeOnce(fn: () => Promise<unknown>, setup?: () => Promise<unknown>): Promise<number> {
  if (setup) await setup();
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

export interface Case {
  id: string;
  /** Untimed preparation before every run (e.g. emptying the target table). */
  setup?: () => Promise<unknown>;
  run: () => Promise<unknown>;
}

/**
 * Times several cases round-robin (A B C, A B C, …) so drift over the run
 * (autovacuum, checkpoints, a noisy neighbour) spreads evenly over them.
 * Returns the timed samples per case id, warm-up runs dropped.
 */
export async function timeRoundRobin(cases: readonly Case[], options: Pick<BenchOptions, "repeat" | "warmup">): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(cases.map((c) => [c.id, []]));
  for (let round = 0; round < options.warmup + options.repeat; round += 1) {
    for (const c of cases) {
      const ms = await timeOnce(c.run, c.setup);
      if (round >= options.warmup) samples.get(c.id)?.push(ms);
    }
  }
  return samples;
}

export function timingFigure(id: string, label: string, samples: readonly number[]): Figure {
  return { id, label, value: median(samples), unit: "ms", p95: percentile(samples, 95), samples: [...samples] };
}

export function withRatio(figure: Figure, reference: Figure, name: string): Figure {
  return { ...figure, ratio: { value: figure.value / reference.value, to: name } };
}

export function withGoal(figure: Figure, text: string, met: boolean): Figure {
  return { ...figure, goal: { text, met } };
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

function readResults(file: string): ResultsFile | undefined {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
    if (typeof parsed === "object" && parsed !== null && "sections" in parsed && "machine" in parsed) return parsed as ResultsFile;
  } catch {
    // Missing or unreadable: start a new file.
  }
  return undefined;
}

/**
 * Stores `section` in the results file, replacing the previous run's section of
 * the same name and keeping the others (each package's bench writes its own).
 */
export function saveSection(file: string, section: Section, machine: Partial<MachineInfo> = {}): void {
  const previous = readResults(file);
  const results: ResultsFile = {
    machine: { ...machineInfo(), ...(previous?.machine.postgres ? { postgres: previous.machine.postgres } : {}), ...machine },
    sections: { ...previous?.sections, [section.name]: section },
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}

function formatValue(value: number, unit: Figure["unit"]): string {
  if (unit === "ms") return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value < 10 ? 2 : 1)} ms`;
  if (unit === "rows") return `${value.toLocaleString("en-US")} rows`;
  if (unit === "bytes") return `${Math.round(value).toLocaleString("en-US")} bytes`;
  return `${value.toFixed(1)} ${unit}`;
}

/** The section as a Markdown table (printed, and pasted into the README's Performance section). */
export function formatSection(section: Section): string {
  const lines = [
    `### ${section.title}${section.smoke ? " (smoke: tiny sizes, not meaningful)" : ""}`,
    "",
    `| figure | median | p95 | ratio | goal |`,
    `|---|---:|---:|---:|---|`,
  ];
  for (const f of section.figures) {
    const ratio = f.ratio ? `${f.ratio.value.toFixed(f.ratio.value < 10 ? 2 : 1)}× ${f.ratio.to}` : "";
    const goal = f.goal ? `${f.goal.met ? "met" : "**missed**"} (${f.goal.text})` : "";
    lines.push(`| ${f.label} | ${formatValue(f.value, f.unit)} | ${f.p95 === undefined ? "" : formatValue(f.p95, f.unit)} | ${ratio} | ${goal} |`);
  }
  return lines.join("\n");
}

/** Prints the section and stores it; a benchmark's last step. */
export function report(options: BenchOptions, section: Section, machine: Partial<MachineInfo> = {}): void {
  process.stdout.write(`\n${formatSection(section)}\n\nresults: ${options.out}\n`);
  saveSection(options.out, section, machine);
}

/** Runs a benchmark's main: exit 1 with one clear line when it could not run (a missed goal is not a failure). */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
