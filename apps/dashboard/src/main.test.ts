import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * The standalone dashboard as a real process (src/main.ts through tsx, the
 * workspace packages from their built dist/): its exit code for bad settings,
 * and which embedded database it opens.
 */

const APP_DIR = path.resolve(__dirname, "..");
const TSX = path.join(APP_DIR, "node_modules", ".bin", "tsx");

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
    const child = spawn(TSX, ["src/main.ts"], {
      cwd: APP_DIR,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir(), DASHBOARD_PORT: "0", LOG_FORMAT: "json", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 50_000);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (until?.test(stderr)) child.kill("SIGTERM");
    });
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve({ code, stderr });
    });
  });
}

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
