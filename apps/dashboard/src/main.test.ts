import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import type { CoverageResponse } from "./api-types";
import { COINS, fillDatabase } from "./testing/fixture";

/**
 * The standalone dashboard as a real process (dist/main.js with plain node, as
 * `pnpm --filter dashboard start` runs it; the test task builds it first): its exit
 * code for bad settings, and which embedded database it opens.
 */

const APP_DIR = path.resolve(__dirname, "..");
/** `pnpm --filter dashboard start`'s command (package.json), run directly so the test sees the process's own exit code. */
const START = ["--enable-source-maps", "dist/main.js"];

interface Run {
  code: number | null;
  stderr: string;
}

/**
 * Starts the dashboard in apps/dashboard, as `pnpm --filter dashboard start` does, with
 * only `env` (and PATH, HOME); stops it with SIGTERM once `until` matches its stderr.
 */
function runDashboard(env: Record<string, string>, until?: RegExp): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, START, {
      cwd: APP_DIR,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir(), DASHBOARD_PORT: "0", LOG_FORMAT: "json", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 50_000);
    let stderr = "";
    let stopping = false;
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      // Once: a second SIGTERM (on the next chunk of output) would end the process by the signal itself, before its handler's exit code.
      if (stopping || !until?.test(stderr)) return;
      stopping = true;
      child.kill("SIGTERM");
    });
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve({ code, stderr });
    });
  });
}

/**
 * Starts the dashboard as runDashboard does and resolves once it listens, with
 * its start line and port; `stop` ends it (SIGTERM) and waits for it to exit.
 */
function startDashboard(env: Record<string, string>): Promise<{ port: number; started: Record<string, unknown>; stop: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, START, {
      cwd: APP_DIR,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir(), DASHBOARD_PORT: "0", LOG_FORMAT: "json", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 50_000);
    let stderr = "";
    const exited = new Promise<void>((done) => {
      child.on("close", (code) => {
        clearTimeout(guard);
        done();
        reject(new Error(`the dashboard exited (${code}) before listening: ${stderr}`));
      });
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const line = stderr.split("\n").find((l) => l.includes('"message":"dashboard on '));
      const port = /:(\d+)\//.exec(line ?? "")?.[1];
      if (line === undefined || port === undefined) return;
      const started: unknown = JSON.parse(line);
      resolve({
        port: Number(port),
        started: typeof started === "object" && started !== null ? { ...started } : {},
        stop: () => {
          child.kill("SIGTERM");
          return exited;
        },
      });
    });
  });
}

describe("the standalone dashboard process with a read replica (DATABASE_READ_URL)", () => {
  let primary: TestDatabase;
  let replica: TestDatabase;

  beforeAll(async () => {
    // Two real databases: DATABASE_URL's migrated and empty, the replica holding a bot's data.
    primary = await createServerTestDatabase();
    replica = await createServerTestDatabase();
    for (const testDb of [primary, replica]) {
      const db = await openOnTestDatabase(testDb);
      try {
        if (testDb === replica) await fillDatabase(db, Date.now());
      } finally {
        await db.close();
      }
    }
  });
  afterAll(async () => {
    await primary?.drop();
    await replica?.drop();
  });

  it("reads the replica, not DATABASE_URL's database", async () => {
    const dashboard = await startDashboard({ DATABASE_URL: primary.url ?? "", DATABASE_READ_URL: replica.url ?? "", SYMBOLS: COINS.join(","), CANDLEKEEP_DATA_DIR: replica.dataDir });
    try {
      expect(dashboard.started).toMatchObject({ database: "server", reads: "the read replica (DATABASE_READ_URL)" });
      const get = async (route: string): Promise<unknown> => (await fetch(`http://127.0.0.1:${dashboard.port}${route}`)).json();
      // The fixture's candles (a stale coin, a coin without 1d) and its open position are on the replica only.
      const coverage = (await get("/api/coverage")) as CoverageResponse;
      // The primary would show every series missing and no position.
      expect(coverage.totals).toEqual({ fresh: 15, late: 0, stale: 4, missing: 1 });
      expect(await get("/api/positions")).toMatchObject({ positions: [{ symbol: "ETH/USDT", side: "LONG", quantity: 2, entryPrice: 140 }] });
    } finally {
      await dashboard.stop();
    }
  });
});

describe("the standalone dashboard process", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-dashboard-cli-"));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it("exits 2 with the URL validator's one line, without the password, for a malformed DATABASE_URL", async () => {
    const run = await runDashboard({ DATABASE_URL: "postgresql://candlekeep:p@ss@db.example.com/candlekeep" });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split("\n")).toEqual([
      "Invalid configuration:",
      expect.stringMatching(/^ {2}- Invalid DATABASE_URL: the password contains an unencoded '@'; percent-encode/),
    ]);
    expect(run.stderr).not.toContain("p@ss");
  });

  it("refuses at start-up, exit 2, a gap window past its cap, pointing at the history audit", async () => {
    const run = await runDashboard({ GAP_WINDOW_CANDLES: "100000", CANDLEKEEP_DATA_DIR: path.join(root, "unused") });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split("\n")).toEqual(["Invalid configuration:", expect.stringMatching(/^ {2}- GAP_WINDOW_CANDLES must be at most 5000: .* history audit \(verify's history check\)/)]);
    expect(fs.existsSync(path.join(root, "unused"))).toBe(false);
  });

  it("opens the bot's ./.candlekeep in the directory pnpm was run from, not apps/dashboard's", async () => {
    // pnpm --filter runs the script inside apps/dashboard and keeps the invoking directory in INIT_CWD.
    const run = await runDashboard({ INIT_CWD: root }, /"message":"dashboard on /);
    const started = run.stderr.split("\n").find((line) => line.includes('"message":"dashboard on '));
    expect(started).toBeDefined();
    const fields: unknown = JSON.parse(started ?? "{}");
    // The start line names the kind only (no path or host goes to the page); the data directory shows which it opened.
    expect(fields).toMatchObject({ database: "embedded" });
    expect(fs.existsSync(path.join(root, ".candlekeep", "pgdata"))).toBe(true);
    expect(run.code).toBe(0);
  });
});
