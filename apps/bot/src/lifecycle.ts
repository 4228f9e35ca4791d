import os from "node:os";
import { describeError, type Logger } from "@candlekeep/core";

/** Exit codes of `node dist/main.js` (README: Exit codes). */
export const EXIT_CODES = {
  /** Stopped by SIGTERM/SIGINT or after --ticks; a backfill that loaded every series. */
  done: 0,
  /** A failure: at start-up (database, bot lock, migrations) or later (the HTTP port taken, an unexpected error), a backfill that left series out. */
  failed: 1,
  /** Only a configuration change fixes it. */
  configuration: 2,
  /** The shutdown did not finish within SHUTDOWN_TIMEOUT_MS: the watchdog ended the process. */
  shutdownTimedOut: 3,
} as const;

/**
 * 128 + the signal's number, as a shell reports a process the signal ended: a backfill stopped
 * before it finished, and a second signal (exit at once), end with it (130 SIGINT, 143 SIGTERM).
 */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

/** The shutdown keeps this much of its bound (at most half of it) for releasing the bot lock and closing the database. */
const CLOSE_RESERVE_MS = 8000;

export interface LifecycleOptions {
  logger: Logger;
  /** The whole shutdown's bound, from the moment it begins (SHUTDOWN_TIMEOUT_MS). */
  timeoutMs: number;
  /** Ends the process (process.exit). */
  exit?: (code: number) => void;
}

/**
 * One ending for every run. A stop is requested by a signal or by a fatal error that
 * escaped the work (`fail`); the work sees it on `stopping` and winds down; the shutdown
 * (final writes within their bound, the bot lock released, the database closed) then
 * ends with `finish`, which logs one line with the exit code and exits.
 *
 * From the moment the shutdown begins (the first signal, a failure, or the work's end),
 * a watchdog (an unref'd timer) bounds it: past `timeoutMs` it logs one line naming the
 * stage that hung and exits EXIT_CODES.shutdownTimedOut. A second signal exits at once.
 */
export class Lifecycle {
  private readonly controller = new AbortController();
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly exit: (code: number) => void;
  private began: number | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stage = "stopping the work";
  private failure: unknown;
  private failed = false;
  /** The first SIGTERM/SIGINT received. */
  signal: NodeJS.Signals | undefined;

  constructor(options: LifecycleOptions) {
    this.logger = options.logger;
    this.timeoutMs = options.timeoutMs;
    this.exit = options.exit ?? ((code) => process.exit(code));
  }

  /** Aborted once a stop is requested (a signal or a failure). */
  get stopping(): AbortSignal {
    return this.controller.signal;
  }

  /** True when a failure outside the work's own awaits (`fail`) asked for the stop. */
  get hasFailed(): boolean {
    return this.failed;
  }

  /** SIGTERM and SIGINT stop the work; an exception nothing caught fails the run (both through the one shutdown). */
  listen(): void {
    process.on("SIGTERM", (signal) => this.onSignal(signal));
    process.on("SIGINT", (signal) => this.onSignal(signal));
    process.on("uncaughtException", (error) => this.fail(error));
    process.on("unhandledRejection", (reason) => this.fail(reason));
  }

  onSignal(signal: NodeJS.Signals): void {
    if (this.signal !== undefined) {
      this.logger.warn("second signal: exiting at once", { signal, exitCode: signalExitCode(signal) });
      this.exit(signalExitCode(signal));
      return;
    }
    this.signal = signal;
    this.logger.info("stopping after the current tick", { signal, shutdownTimeoutMs: this.timeoutMs });
    this.begin();
    this.controller.abort();
  }

  /** A fatal error outside the work's awaits: one line, then the shutdown, exit 1. */
  fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = error;
    this.logger.error(`bot failed: ${describeError(error)}`);
    this.begin();
    this.controller.abort();
  }

  /** The shutdown begins (if it has not): the watchdog is armed. */
  begin(): void {
    if (this.began !== undefined) return;
    this.began = Date.now();
    this.watchdog = setTimeout(() => {
      this.logger.error(`shutdown did not finish within ${this.timeoutMs} ms; exiting`, {
        exitCode: EXIT_CODES.shutdownTimedOut,
        stage: this.stage,
        ...(this.failure === undefined ? {} : { failure: describeError(this.failure) }),
      });
      this.exit(EXIT_CODES.shutdownTimedOut);
    }, this.timeoutMs);
    this.watchdog.unref();
  }

  /** Names what the shutdown is doing, for the watchdog's line. */
  at(stage: string): void {
    this.stage = stage;
  }

  /** How long the final writes may take: what is left of the bound, less the time kept for closing. */
  writesBudgetMs(): number {
    const began = this.began ?? Date.now();
    const reserve = Math.min(CLOSE_RESERVE_MS, Math.round(this.timeoutMs / 2));
    return Math.max(0, began + this.timeoutMs - reserve - Date.now());
  }

  /**
   * `work`'s outcome once it settles; or, once a stop has been requested, undefined when it
   * has not settled within the writes budget (a tick that hangs on the database).
   */
  async settle<T>(work: Promise<T>): Promise<{ value: T } | undefined> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const gaveUp = new Promise<undefined>((resolve) => {
      onAbort = () => {
        timer = setTimeout(() => resolve(undefined), this.writesBudgetMs());
      };
      if (this.stopping.aborted) onAbort();
      else this.stopping.addEventListener("abort", onAbort, { once: true });
    });
    const outcome = work.then((value) => ({ value }));
    // A failure after this gave up is not this caller's to handle (nor an unhandled rejection).
    outcome.catch(() => undefined);
    try {
      return await Promise.race([outcome, gaveUp]);
    } finally {
      clearTimeout(timer);
      if (onAbort) this.stopping.removeEventListener("abort", onAbort);
    }
  }

  /** The one last line, then the exit. */
  finish(code: number, reason: string): void {
    clearTimeout(this.watchdog);
    const exitCode = this.failed && code === EXIT_CODES.done ? EXIT_CODES.failed : code;
    this.logger.info("shutdown finished", { exitCode, reason, ms: this.began === undefined ? 0 : Date.now() - this.began });
    this.exit(exitCode);
  }
}
