import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadedModulesProbe, type TestDatabase } from "@candlekeep/db/testing";
import { createMigratedDatabase, fillLikeTheBot, healthyStorageStatus } from "./test-helpers";

/**
 * The real CLI in a child process: exit codes, what goes to stdout and stderr,
 * and that nothing prints a stack trace. It runs src/main.ts with tsx, which
 * loads the workspace packages' built dist/ (turbo builds them before tests).
 */

const APP_DIR = path.resolve(__dirname, "..");
const TSX = path.join(APP_DIR, "node_modules", ".bin", "tsx");

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(argv: string[], env: Record<string, string>): Promise<CliResult> {
  // Only what a deployment would set: none of the test runner's own settings leak in.
  const base = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir() };
  return new Promise((resolve) => {
    execFile(TSX, ["src/main.ts", ...argv], { cwd: APP_DIR, env: { ...base, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The CLI on a terminal: stdout and stderr both a pseudo-terminal (util-linux `script`), as a user at a shell sees it. */
function cliOnTerminal(env: Record<string, string>): Promise<CliResult> {
  const base = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir(), TERM: "xterm" };
  return new Promise((resolve) => {
    const child = execFile("script", ["-qec", `${TSX} src/main.ts`, "/dev/null"], { cwd: APP_DIR, env: { ...base, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout: stdout.replace(/\r\n/g, "\n"), stderr });
    });
    child.stdin?.end();
  });
}

const STACK_LINE = /^\s+at .+[(:]\d+/m;

/**
 * Records every module the CLI resolves through Node's ESM loader (tsx sends the
 * app's own imports there too, and ccxt is loaded by a dynamic import), so a
 * test can tell whether ccxt was loaded at all.
 */
function importsProbe(dir: string): { nodeOptions: string; resolved(): string[] } {
  fs.mkdirSync(dir, { recursive: true });
  const listed = path.join(dir, "imports.txt");
  fs.rmSync(listed, { force: true });
  fs.writeFileSync(
    path.join(dir, "resolve-hook.mjs"),
    `import { appendFileSync } from "node:fs";\nexport async function resolve(specifier, context, next) {\n  const resolved = await next(specifier, context);\n  appendFileSync(${JSON.stringify(listed)}, resolved.url + "\\n");\n  return resolved;\n}\n`,
  );
  const register = path.join(dir, "imports.mjs");
  fs.writeFileSync(register, `import { register } from "node:module";\nregister("./resolve-hook.mjs", import.meta.url);\n`);
  return { nodeOptions: `--import ${register}`, resolved: () => (fs.existsSync(listed) ? fs.readFileSync(listed, "utf8").split("\n").filter(Boolean) : []) };
}

const ccxtModules = (urls: readonly string[]) => urls.filter((url) => url.includes("/ccxt/"));

describe("the verify command", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-verify-cli-"));
  let healthy: TestDatabase;
  let storage: Awaited<ReturnType<typeof healthyStorageStatus>>;
  const coins = ["BTC/USDT", "ETH/USDT"];
  const env = () => ({ DATABASE_URL: healthy.url ?? "", CANDLEKEEP_DATA_DIR: dataDir, EXCHANGE: "sim", SYMBOLS: coins.join(","), TIMEFRAMES: "15m,1h" });

  beforeAll(async () => {
    healthy = await createMigratedDatabase("server", (db) => fillLikeTheBot(db, { symbols: coins, timeframes: ["15m", "1h"], nowMs: Date.now() }));
    storage = await healthyStorageStatus("server", healthy);
  });
  afterAll(async () => {
    await healthy.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("exits 1 with the URL validator's one line and no stack trace for a malformed DATABASE_URL", async () => {
    const result = await cli([], { DATABASE_URL: "postgresql://candlekeep:p@ss@db.example.com/candlekeep", CANDLEKEEP_DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^connection +FAIL +Invalid DATABASE_URL: the password contains an unencoded '@'; percent-encode/m);
    expect(result.stdout).toMatch(/^migrations +skip +skipped: no database connection$/m);
    expect(result.stdout).toMatch(/^verify FAIL: 0 passed, 0 warned, 1 failed, 8 skipped in /m);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(STACK_LINE);
    expect(`${result.stdout}${result.stderr}`).not.toContain("p@ss");
  });

  it("exits 1 for an unreachable server, after --retries attempts, with the redacted target", async () => {
    const result = await cli(["--retries", "0"], { DATABASE_URL: "postgresql://candlekeep:s3cret@127.0.0.1:1/candlekeep", CANDLEKEEP_DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^connection +FAIL +Cannot reach PostgreSQL at 127\.0\.0\.1:1 \(database "candlekeep"\) after 1 attempt: /m);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(STACK_LINE);
    expect(`${result.stdout}${result.stderr}`).not.toContain("s3cret");
  });

  it("exits 2 listing each bad flag and setting, with the usage, and prints no report", async () => {
    const result = await cli(["--only", "nope", "--stale-after", "soon"], { LOG_LEVEL: "chatty" });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Invalid configuration:\n  - LOG_LEVEL must be one of error, warn, info, debug\n  - --only has unknown check nope");
    expect(result.stderr).toContain("  - --stale-after must be a number");
    expect(result.stderr).toContain("Usage: pnpm --filter verify start");
  });

  it("prints one JSON document on stdout with --json and exits 0 on a healthy database, progress going to stderr", async () => {
    const result = await cli(["--json"], env());
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { status: string; exitCode: number; checks: { name: string; status: string }[] };
    expect(report.status).toBe(storage === "warn" ? "warn" : "pass");
    expect(report.exitCode).toBe(0);
    expect(report.checks.map((c) => `${c.name}:${c.status}`)).toEqual(["connection:pass", "migrations:pass", "schema:pass", "roundtrip:pass", "coverage:pass", "history:pass", "activity:pass", "books:pass", `storage:${storage}`]);
    const progress = result.stderr.split("\n").filter(Boolean).map((line) => (JSON.parse(line) as { message: string }).message);
    expect(progress.filter((m) => /^\w+: (pass|warn) \(\d+ ms\)/.test(m))).toHaveLength(9);
  });

  it("on a terminal prints each check once, in the table (no progress line before it)", async () => {
    const result = await cliOnTerminal(env());
    expect(result.code).toBe(0);
    const expected = { connection: "pass", migrations: "pass", schema: "pass", roundtrip: "pass", coverage: "pass", history: "pass", activity: "pass", books: "pass", storage: storage === "warn" ? "WARN" : "pass" };
    for (const [check, status] of Object.entries(expected)) {
      expect(result.stdout.match(new RegExp(`^${check}\\b.*$`, "gm"))).toEqual([expect.stringMatching(new RegExp(`^${check} +${status} +`))]);
      expect(result.stdout).not.toContain(`${check}: ${status.toLowerCase()} (`);
    }
    expect(result.stdout).toMatch(storage === "warn" ? /^verify PASS with warnings: 8 passed, 1 warned/m : /^verify PASS: 9 passed/m);
  });

  it("exits 1 when a check fails and says which coin in the table", async () => {
    const result = await cli(["--symbols", "BTC/USDT,NEW/USDT", "--only", "coverage"], env());
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^coverage +FAIL +2 coins × 2 timeframes on sim: 2 with no candles of 4 series — no candles: NEW\/USDT \(all timeframes\)$/m);
    expect(result.stdout).toMatch(/^verify FAIL: 1 passed, 0 warned, 1 failed, 0 skipped in /m);
  });

  it("never loads Prisma's client (every check reads through SQL; its modules and first query cost ~250 ms of the run), nor the embedded engine on a server", async () => {
    const probe = loadedModulesProbe(dataDir);
    const result = await cli(["--json"], { ...env(), NODE_OPTIONS: probe.nodeOptions });
    expect(result.code).toBe(0);
    expect(probe.loaded()).toEqual({ dbPackage: true, prisma: [], embeddedEngine: [] });
  });

  it("loads ccxt only to read a live account with keys: a paper run never does, and an EXCHANGE ccxt lacks exits 2 in one line without the keys", async () => {
    const paper = importsProbe(path.join(dataDir, "paper-probe"));
    const result = await cli(["--only", "books"], { ...env(), NODE_OPTIONS: paper.nodeOptions });
    expect(result.code).toBe(0);
    // That the hook saw the run at all: otherwise "no ccxt" proves nothing.
    expect(paper.resolved().some((url) => url.endsWith("/src/main.ts"))).toBe(true);
    expect(ccxtModules(paper.resolved())).toEqual([]);

    const live = importsProbe(path.join(dataDir, "live-probe"));
    const keys = { EXCHANGE_API_KEY: "cli-api-key-7e3f19", EXCHANGE_API_SECRET: "cli-secret-0b6d42" };
    const unknown = await cli(["--only", "books"], { ...env(), EXCHANGE: "notanexchange", TRADING_MODE: "live", ...keys, NODE_OPTIONS: live.nodeOptions });
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe("");
    expect(unknown.stderr).toBe('EXCHANGE "notanexchange" is not an exchange ccxt supports, so verify cannot read the live account\'s balances. Set EXCHANGE to the bot\'s exchange id (e.g. binance, kraken, coinbase).\n');
    expect(ccxtModules(live.resolved()).length).toBeGreaterThan(0);
  });

  it("warns in the books row, naming the settings, for a live account without keys, and exits 0", async () => {
    const result = await cli(["--only", "books"], { ...env(), EXCHANGE: "binance", TRADING_MODE: "live", EXCHANGE_API_KEY: "cli-api-key-7e3f19" });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^books +WARN +binance live: exchange balances not compared: verify needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET /m);
    expect(`${result.stdout}${result.stderr}`).not.toContain("cli-api-key-7e3f19");
  });
});
