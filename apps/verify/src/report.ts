import type { CheckResult } from "./check";
import type { VerifyReport } from "./run";

const STATUS_TEXT: Readonly<Record<CheckResult["status"], string>> = { pass: "pass", warn: "WARN", fail: "FAIL", skip: "skip" };

/**
 * How loud the progress lines are: info, so a report piped elsewhere (or --json) still shows
 * progress on stderr; debug when the table goes to the same terminal as the log, where every
 * check would otherwise be printed twice, once as it completes and once in the table.
 */
export function progressLevel(output: "table" | "json", terminal: { stdout: boolean; stderr: boolean }): "info" | "debug" {
  return output === "table" && terminal.stdout && terminal.stderr ? "debug" : "info";
}

/** One line per check as it completes, for the progress output on stderr. */
export function progressLine(result: CheckResult): string {
  return `${result.name}: ${result.status} (${result.durationMs} ms) ${result.summary}`;
}

/** The terminal report: a check/status/result table, detail lines under their row, a summary line. */
export function renderTable(report: VerifyReport): string {
  const nameWidth = Math.max("CHECK".length, ...report.checks.map((c) => c.name.length));
  const statusWidth = "STATUS".length;
  const indent = " ".repeat(nameWidth + statusWidth + 4);
  const row = (name: string, status: string, text: string) => `${name.padEnd(nameWidth)}  ${status.padEnd(statusWidth)}  ${text}`;
  const lines = [row("CHECK", "STATUS", "RESULT")];
  for (const check of report.checks) {
    lines.push(row(check.name, STATUS_TEXT[check.status], check.summary));
    for (const detail of check.details) lines.push(`${indent}- ${detail}`);
  }
  lines.push("", summaryLine(report));
  return `${lines.join("\n")}\n`;
}

export function summaryLine(report: VerifyReport): string {
  const count = (status: CheckResult["status"]) => report.checks.filter((c) => c.status === status).length;
  const counts = `${count("pass")} passed, ${count("warn")} warned, ${count("fail")} failed, ${count("skip")} skipped`;
  const verdict = report.status === "fail" ? "FAIL" : report.status === "warn" ? "PASS with warnings" : "PASS";
  return `verify ${verdict}: ${counts} in ${(report.durationMs / 1000).toFixed(1)} s${report.database ? ` (${report.database})` : ""}`;
}

/** The --json document: the whole report, one object. */
export function renderJson(report: VerifyReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
