import { setTimeout as sleep } from "node:timers/promises";
import { captureLogger } from "@candlekeep/db/testing";
import { EXIT_CODES, Lifecycle, signalExitCode } from "./lifecycle";

describe("Lifecycle", () => {
  function setup(timeoutMs: number) {
    const logger = captureLogger();
    const exits: number[] = [];
    const life = new Lifecycle({ logger, timeoutMs, exit: (code) => void exits.push(code) });
    return { life, logger, exits, messages: () => logger.lines.map((l) => `${l.level} ${l.message}`) };
  }

  it("ends with one line naming the exit code, and the watchdog never fires after it", async () => {
    const { life, logger, exits } = setup(50);
    life.begin();
    life.finish(EXIT_CODES.done, "ticks done");
    await sleep(100);
    expect(exits).toEqual([0]);
    expect(logger.lines).toEqual([{ level: "info", message: "shutdown finished", meta: { exitCode: 0, reason: "ticks done", ms: expect.any(Number) } }]);
  });

  it("a shutdown that does not finish in time is ended by the watchdog: one line naming the stage, exit 3", async () => {
    const { life, logger, exits } = setup(50);
    life.onSignal("SIGTERM");
    expect(life.stopping.aborted).toBe(true);
    life.at("closing the database");
    await sleep(120);
    expect(exits).toEqual([EXIT_CODES.shutdownTimedOut]);
    expect(logger.lines.filter((l) => l.level === "error")).toEqual([
      { level: "error", message: "shutdown did not finish within 50 ms; exiting", meta: { exitCode: 3, stage: "closing the database" } },
    ]);
  });

  it("a second signal exits at once with 128 + its number", () => {
    const { life, exits, messages } = setup(10_000);
    life.onSignal("SIGINT");
    expect(exits).toEqual([]);
    life.onSignal("SIGINT");
    expect(exits).toEqual([130]);
    expect(signalExitCode("SIGTERM")).toBe(143);
    expect(messages()).toEqual(["info stopping after the current tick", "warn second signal: exiting at once"]);
    life.finish(0, "test"); // clears the watchdog
  });

  it("a failure outside the work stops it, and the run ends with exit 1 whatever the work returned", () => {
    const { life, exits, logger } = setup(10_000);
    life.fail(new Error("boom"));
    life.fail(new Error("again"));
    expect(life.stopping.aborted).toBe(true);
    life.finish(EXIT_CODES.done, "signal");
    expect(exits).toEqual([1]);
    expect(logger.lines.map((l) => l.message)).toEqual(["bot failed: boom", "shutdown finished"]);
  });

  it("waits for the work, but once stopped only until the final writes' budget: half the bound at most, what is left of it", async () => {
    const { life } = setup(200);
    expect(await life.settle(Promise.resolve(7))).toEqual({ value: 7 });
    life.onSignal("SIGTERM");
    expect(life.writesBudgetMs()).toBeLessThanOrEqual(100);
    const started = Date.now();
    expect(await life.settle(new Promise(() => undefined))).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(180);
    life.finish(0, "test");
  });
});
