import { spawn } from "node:child_process";
import path from "node:path";
import { latestEvents, openDatabase } from "@candlekeep/db";
import { captureLogger, createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";

/** The real CLI process: start-up validation, signals and exit codes. */

const APP_DIR = path.resolve(__dirname, "..");
const TSX = path.join(APP_DIR, "node_modules/.bin/tsx");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function startBot(args: string[], env: Record<string, string>, onLine?: (line: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(TSX, ["src/main.ts", ...args], {
      cwd: APP_DIR,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", TICK_INTERVAL_MS: "100", PORT: "0", HISTORY_CANDLES: "100", ...env },
    });
    const run: Run = { code: null, stdout: "", stderr: "" };
    child.stdout.on("data", (chunk: Buffer) => (run.stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      const text = chunk.toString();
      run.stderr += text;
      for (const line of text.split("\n")) if (line) onLine?.(line, child);
    });
    child.on("exit", (code) => {
      run.code = code;
      resolve(run);
    });
  });
}

describe("bot CLI", () => {
  it("refuses bad settings with one line per problem and exit code 2, without secrets or stack traces", async () => {
    const run = await startBot(["--ticks", "0"], { TIMEFRAMES: "15m,7m", EXCHANGE_API_SECRET: "hunter2-secret", TRADING_MODE: "live", DATABASE_POOL_MAX: "-1" });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("Invalid configuration:");
    expect(run.stderr).toContain("  - --ticks must be a whole number ≥ 1");
    expect(run.stderr).toContain("  - TIMEFRAMES has unknown 7m; use a comma list of 15m, 1h, 4h, 1d");
    expect(run.stderr).toContain("  - DATABASE_POOL_MAX must be at least 1");
    expect(run.stderr).not.toContain("hunter2-secret");
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("exits 1 with one clear line when the database is unreachable, password redacted", async () => {
    const run = await startBot(["--ticks", "1"], { DATABASE_URL: "postgresql://bot:p%40ssw0rd@127.0.0.1:1/candlekeep", DATABASE_CONNECT_RETRIES: "0" });
    expect(run.code).toBe(1);
    const errors = run.stderr.split("\n").filter((l) => l.includes('"level":"error"'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("Cannot reach PostgreSQL at 127.0.0.1:1");
    expect(run.stderr).not.toContain("p%40ssw0rd");
    expect(run.stderr).not.toContain("p@ssw0rd");
  });

  describe("with a database", () => {
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await createServerTestDatabase();
    });
    afterAll(async () => {
      await testDb.drop();
    });

    it("on SIGTERM finishes the tick, flushes, records SHUTDOWN and exits 0; logs are JSON lines", async () => {
      let signalled = false;
      const run = await startBot([], { DATABASE_URL: testDb.url ?? "", SYMBOLS: "BTC/USDT,ETH/USDT" }, (line, child) => {
        if (!signalled && line.includes('"message":"tick"') && line.includes('"tick":3')) {
          signalled = true;
          child.kill("SIGTERM");
        }
      });
      expect(run.code).toBe(0);
      const lines = run.stderr.trim().split("\n");
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      expect(lines.some((l) => l.includes("stopping after the current tick"))).toBe(true);

      const db = await openDatabase({ databaseUrl: testDb.url, dataDir: testDb.dataDir, autoMigrate: false, logger: captureLogger() });
      try {
        const [shutdownEvent] = await latestEvents(db, { type: "SHUTDOWN", limit: 1 });
        expect(shutdownEvent?.payload).toMatchObject({ reason: "signal" });
        expect((await latestEvents(db, { type: "STARTUP", limit: 5 })).length).toBe(1);
      } finally {
        await db.close();
      }
    });
  });
});
