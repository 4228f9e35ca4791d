import { amount } from "./check";
import { progressLevel, renderJson, renderTable, summaryLine } from "./report";
import type { VerifyReport } from "./run";

const report: VerifyReport = {
  status: "fail",
  exitCode: 1,
  startedAt: "2026-11-25T12:00:00.000Z",
  durationMs: 1234,
  database: "postgresql://ck:***@db:5432/ck",
  checks: [
    { name: "connection", status: "pass", summary: "PostgreSQL 15.20 at postgresql://ck:***@db:5432/ck; round trip 0.4 ms", details: [], data: undefined, durationMs: 12 },
    { name: "coverage", status: "fail", summary: "2 coins × 1 timeframe on sim: 1 stale of 2 series — stale: OLD/USDT 15m", details: ["coins: SYMBOLS", "stale, more than 2 candles behind (1 series): OLD/USDT 15m (last 2026-11-25T10:45Z, 5 behind)"], data: { coins: 2 }, durationMs: 3 },
    { name: "activity", status: "warn", summary: "1/2 coins with a decision trace in the last 15 min", details: [], data: undefined, durationMs: 2 },
  ],
};

describe("the report", () => {
  it("renders a table with detail lines under their check and a summary line", () => {
    expect(renderTable(report)).toBe(
      [
        "CHECK       STATUS  RESULT",
        "connection  pass    PostgreSQL 15.20 at postgresql://ck:***@db:5432/ck; round trip 0.4 ms",
        "coverage    FAIL    2 coins × 1 timeframe on sim: 1 stale of 2 series — stale: OLD/USDT 15m",
        "                    - coins: SYMBOLS",
        "                    - stale, more than 2 candles behind (1 series): OLD/USDT 15m (last 2026-11-25T10:45Z, 5 behind)",
        "activity    WARN    1/2 coins with a decision trace in the last 15 min",
        "",
        "verify FAIL: 1 passed, 1 warned, 1 failed, 0 skipped in 1.2 s (postgresql://ck:***@db:5432/ck)",
        "",
      ].join("\n"),
    );
  });

  it("says PASS with warnings when nothing failed", () => {
    expect(summaryLine({ ...report, status: "warn", exitCode: 0, checks: report.checks.filter((c) => c.status !== "fail") })).toMatch(/^verify PASS with warnings: 1 passed, 1 warned, 0 failed, 0 skipped/);
  });

  it("renders --json as one parseable document holding every check", () => {
    expect(JSON.parse(renderJson(report))).toEqual(JSON.parse(JSON.stringify(report)));
  });

  it("keeps progress lines out of a terminal that shows the table, and on stderr otherwise", () => {
    expect(progressLevel("table", { stdout: true, stderr: true })).toBe("debug");
    expect(progressLevel("table", { stdout: false, stderr: true })).toBe("info"); // the table goes to a file or a pipe
    expect(progressLevel("table", { stdout: true, stderr: false })).toBe("info"); // the log goes elsewhere
    expect(progressLevel("json", { stdout: true, stderr: true })).toBe("info");
  });
});

describe("amounts in the report", () => {
  it("are written with at most 8 decimals, without binary noise or exponents", () => {
    expect(amount(1.2150886286826903)).toBe("1.21508863");
    expect(amount(2861.8108502865152)).toBe("2861.81085029");
    expect(amount(-7138.189149713487)).toBe("-7138.18914971");
    expect(amount(9949.449499999999)).toBe("9949.4495");
    expect(amount(10_000)).toBe("10000");
    expect(amount(0.29950000000000004)).toBe("0.2995");
    expect(amount(0)).toBe("0");
    expect(amount(-0)).toBe("0");
  });

  it("keep 8 significant digits of a small price or quantity", () => {
    expect(amount(0.000012345678901)).toBe("0.000012345679");
    expect(amount(1.2345e-8)).toBe("0.000000012345");
    expect(amount(1e-8)).toBe("0.00000001");
  });
});
