import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { openDatabase, type Database } from "@candlekeep/db";
import { captureLogger, createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";

/**
 * Test support: the real bot CLI (src/main.ts through tsx, no build needed) as
 * a child process with JSON logs, its log lines parsed as they arrive, so a
 * test can wait for what the bot says, signal it, kill it and read its exit code.
 *
 * node runs the bot itself with tsx as a loader (`node --import tsx`), not the
 * tsx CLI: the CLI runs the script in a second process, and a SIGKILL sent to
 * the CLI would leave that one running. Here the child is the bot.
 */

const APP_DIR = path.resolve(__dirname, "../..");

/** One stderr line: a parsed JSON log entry, or `raw` text (e.g. a configuration error). */
export interface LogLine {
  level: string | undefined;
  message: string | undefined;
  timestamp: number | undefined;
  fields: Record<string, unknown>;
  raw: string;
}

export interface BotProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  stdout(): string;
  stderr(): string;
  /** The exit code (null when killed by a signal) once the process has ended. */
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /**
   * Resolves with the first line matching `predicate`, among those from index
   * `from` on (default: all, those seen so far included); rejects after
   * `timeoutMs` or when the process ends first.
   */
  waitFor(what: string, predicate: (line: LogLine) => boolean, options?: WaitOptions): Promise<LogLine>;
  /** Waits for a `tick` log line whose tick number is at least `tick`. */
  waitForTick(tick: number, options?: WaitOptions): Promise<LogLine>;
  /** SIGKILL if still running; resolves when it has ended. */
  kill(): Promise<void>;
}

export interface WaitOptions {
  /** Only lines at or after this index of `lines` (e.g. `lines.length` noted before acting). */
  from?: number;
  timeoutMs?: number;
}

/** Settings every spawned bot gets unless the test overrides them. */
const BASE_ENV: Record<string, string> = {
  TICK_INTERVAL_MS: "100",
  PORT: "0",
  HOST: "127.0.0.1",
  HISTORY_CANDLES: "100",
  LOG_FORMAT: "json",
  DATABASE_CONNECT_RETRIES: "0",
};

function parseLine(raw: string): LogLine {
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      const fields: Record<string, unknown> = { ...value };
      const { level, message, timestamp } = fields;
      return {
        level: typeof level === "string" ? level : undefined,
        message: typeof message === "string" ? message : undefined,
        timestamp: typeof timestamp === "string" ? Date.parse(timestamp) : undefined,
        fields,
        raw,
      };
    }
  } catch {
    // not JSON: kept as raw text
  }
  return { level: undefined, message: undefined, timestamp: undefined, fields: {}, raw };
}

/** A number field of a log line, or undefined. */
export function numberField(line: LogLine, key: string): number | undefined {
  const value = line.fields[key];
  return typeof value === "number" ? value : undefined;
}

/**
 * Starts the bot with `env` (over BASE_ENV; nothing else of the test's
 * environment but PATH and HOME). A bot still running after `killAfterMs` is
 * killed, so a stuck test never leaves a process behind. `maxOpenFiles` runs it
 * under that open-file limit (`prlimit --nofile`, which then becomes the bot:
 * the same process id).
 */
export function spawnBot(env: Record<string, string>, args: readonly string[] = [], options: { killAfterMs?: number; maxOpenFiles?: number } = {}): BotProcess {
  const command = [process.execPath, "--import", "tsx", "src/main.ts", ...args];
  if (options.maxOpenFiles !== undefined) command.unshift("prlimit", `--nofile=${options.maxOpenFiles}`);
  const [program = process.execPath, ...programArgs] = command;
  const child = spawn(program, programArgs, {
    cwd: APP_DIR,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...BASE_ENV, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const guard = setTimeout(() => child.kill("SIGKILL"), options.killAfterMs ?? 240_000);
  guard.unref();
  const lines: LogLine[] = [];
  const watchers = new Set<() => void>();
  let stdout = "";
  let stderr = "";
  let partial = "";
  let running = true;
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    const parts = (partial + text).split("\n");
    partial = parts.pop() ?? "";
    for (const part of parts) if (part.trim() !== "") lines.push(parseLine(part));
    for (const watch of watchers) watch();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on("close", (code) => {
      clearTimeout(guard);
      running = false;
      if (partial.trim() !== "") lines.push(parseLine(partial));
      partial = "";
      resolve(code);
      for (const watch of watchers) watch();
    });
  });

  const waitFor = (what: string, predicate: (line: LogLine) => boolean, options: WaitOptions = {}): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const { from = 0, timeoutMs = 30_000 } = options;
      let timer: NodeJS.Timeout | undefined;
      const finish = (error: Error | undefined, line?: LogLine) => {
        watchers.delete(check);
        clearTimeout(timer);
        if (error) reject(error);
        else if (line) resolve(line);
      };
      const tail = () => lines.slice(-15).map((l) => l.raw).join("\n");
      function check() {
        const found = lines.slice(from).find(predicate);
        if (found) return finish(undefined, found);
        if (!running) finish(new Error(`bot exited before: ${what}\n--- last log lines ---\n${tail()}`));
      }
      timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}\n--- last log lines ---\n${tail()}`)), timeoutMs);
      watchers.add(check);
      check();
    });

  return {
    child,
    lines,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    get running() {
      return running;
    },
    waitFor,
    waitForTick: (tick, options) => waitFor(`tick ${tick}`, (l) => l.message === "tick" && (numberField(l, "tick") ?? 0) >= tick, options),
    async kill() {
      if (running) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** What a bot run to its exit printed. */
export interface FinishedRun {
  code: number | null;
  /** stdout and stderr together. */
  output: string;
  lines: LogLine[];
  /** "  - problem" lines of a configuration error. */
  problems: string[];
  /** Messages of the error-level log lines. */
  errors: string[];
}

/** Runs the bot (one tick by default) until it exits, within 45 s. */
export async function runBotToExit(env: Record<string, string>, args: readonly string[] = ["--ticks", "1"]): Promise<FinishedRun> {
  const bot = spawnBot(env, args, { killAfterMs: 45_000 });
  const code = await bot.exited;
  const output = `${bot.stdout()}${bot.stderr()}`;
  return {
    code,
    output,
    lines: bot.lines,
    problems: output.split("\n").filter((line) => line.startsWith("  - ")),
    errors: bot.lines.filter((line) => line.level === "error").map((line) => line.message ?? ""),
  };
}

/**
 * Waits for the bot's first background history audit and its first retention pass to finish (both
 * run after the first tick; the pass with the default EVENT_RETENTION_DAYS): from then on the bot is
 * in its steady state, ticking alone, for a fault a test injects. Resolves with the audit's line.
 */
export async function historyAudited(bot: BotProcess, options?: WaitOptions): Promise<LogLine> {
  const [audited] = await Promise.all([
    bot.waitFor("the first background history audit", (l) => l.message === "history audit: nothing missing" || l.message === "history audit found missing candles; repaired", options),
    bot.waitFor("the first retention pass", (l) => l.message === "retention pass", options),
  ]);
  return audited;
}

/** The number of the last tick `bot` logged (0 before the first). */
export function latestTick(bot: BotProcess): number {
  const last = bot.lines.filter((l) => l.message === "tick").at(-1);
  return last ? (numberField(last, "tick") ?? 0) : 0;
}

/** Lines of `bot` at or after `index` (e.g. those logged since a moment the test noted with `lines.length`). */
export function linesSince(bot: BotProcess, index: number): LogLine[] {
  return bot.lines.slice(index);
}

export interface ProcessTestBed {
  /** Spawns a bot on this test's database with the bed's settings and `env` over them; killed after the test. */
  start(env?: Record<string, string>): BotProcess;
  /** A connection to this test's database for checks; closed after the test. */
  open(): Promise<Database>;
}

/**
 * For a describe block of tests on real bot processes: a fresh PostgreSQL
 * database per test, and bots and connections on it that are killed, closed
 * and dropped after the test (jest hooks).
 */
export function useBotProcessesOnServer(settings: Record<string, string> = {}): ProcessTestBed {
  let testDb: TestDatabase | undefined;
  const bots: BotProcess[] = [];
  const connections: Database[] = [];
  beforeEach(async () => {
    testDb = await createServerTestDatabase();
  });
  afterEach(async () => {
    try {
      await Promise.all(bots.splice(0).map((bot) => bot.kill()));
      await Promise.all(connections.splice(0).map((db) => db.close()));
    } finally {
      await testDb?.drop();
      testDb = undefined;
    }
  });
  const database = (): TestDatabase => {
    if (!testDb) throw new Error("useBotProcessesOnServer: the database exists only while a test runs");
    return testDb;
  };
  return {
    start(env = {}) {
      const bot = spawnBot({ DATABASE_URL: database().url ?? "", CANDLEKEEP_DATA_DIR: database().dataDir, ...settings, ...env });
      bots.push(bot);
      return bot;
    },
    async open() {
      const db = await openDatabase({ databaseUrl: database().url, dataDir: database().dataDir, autoMigrate: false, logger: captureLogger() });
      connections.push(db);
      return db;
    },
  };
}
