import { describeError, type Logger } from "@candlekeep/core";
import { DECISION_TRACE, isWriteOutage, type EventInput } from "@candlekeep/db";
import type { BotStatus } from "./runtime";

/** How often an ongoing database problem is logged. */
export const OUTAGE_LOG_INTERVAL_MS = 30_000;

/**
 * Turns the bot's failing database writes into a readable log: a failing candle
 * write marks the database as down and is logged at once, then at most once per
 * interval while the outage lasts (not once per tick or row), with what is kept
 * pending and what was dropped; the first successful candle write ends it with
 * one line. A read the work waits for (a backfill's plan) joins the same story.
 * Non-critical writes (events, account snapshots) that fail are counted, logged
 * at most once per interval, and not at all while the outage is already being
 * reported. So are coins whose tick failed because the database cannot write at
 * all (a full disk, a stopped embedded engine): their position and order writes
 * fail every tick, for every coin.
 */
export class DatabaseOutage {
  private readonly intervalMs: number;
  private readonly clock: () => number;
  private readonly lastLogged = new Map<string, number>();
  private failedWrites = 0;
  private failedReads = 0;
  /** The database said it cannot write at all (a full disk): reads may work meanwhile, so only a write ends the outage. */
  private cannotWrite = false;
  /** Events dropped since the outage began (or since the last line about them), by type. */
  private readonly dropped = new Map<string, number>();
  /** Coin ticks failed on a write outage since the outage began (or since the last line about them), and their coins. */
  private coinWriteFailures = 0;
  private readonly coinsFailing = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly status: BotStatus,
    options: { intervalMs?: number; clock?: () => number } = {},
  ) {
    this.intervalMs = options.intervalMs ?? OUTAGE_LOG_INTERVAL_MS;
    this.clock = options.clock ?? Date.now;
  }

  get down(): boolean {
    return this.status.dbDownSince !== undefined;
  }

  /** A candle write failed: its candles stay pending and are written by a later one. */
  candleWriteFailed(error: unknown, pendingCandles: number): void {
    this.failedWrites += 1;
    this.failed("writing candles failed; keeping them pending and retrying", error, { pendingCandles });
  }

  /** A read the work cannot go on without failed (`operation`, e.g. "reading the stored candles' coverage"); it is asked again. */
  readFailed(operation: string, error: unknown): void {
    this.failedReads += 1;
    this.failed(`${operation} failed; waiting for the database and retrying`, error, {});
  }

  /** A candle write succeeded: ends an outage, if one was on. */
  candleWriteSucceeded(written: number): void {
    this.back("database is back; pending candles written", { written });
  }

  /** A read the work waited for succeeded: ends an outage, if one was on, unless the database cannot write (a read says nothing about that). */
  readSucceeded(): void {
    if (this.cannotWrite) return;
    this.back("database is back", {});
  }

  private failed(message: string, error: unknown, fields: Record<string, unknown>): void {
    const now = this.clock();
    this.status.dbDownSince ??= new Date(now);
    if (isWriteOutage(error)) this.cannotWrite = true;
    if (!this.due("outage", now)) return;
    this.status.lastOutageLogAt = now;
    this.logger.error(message, {
      ...fields,
      downSince: this.status.dbDownSince.toISOString(),
      downForMs: now - this.status.dbDownSince.getTime(),
      ...this.failedFields(),
      ...this.droppedFields(),
      ...this.coinFields(),
      error: describeError(error),
    });
  }

  private back(message: string, fields: Record<string, unknown>): void {
    const since = this.status.dbDownSince;
    if (since === undefined) return;
    this.logger.info(message, {
      downForMs: this.clock() - since.getTime(),
      ...fields,
      ...this.failedFields(),
      ...this.droppedFields(),
      ...this.coinFields(),
    });
    this.status.dbDownSince = undefined;
    this.status.lastOutageLogAt = undefined;
    this.lastLogged.clear();
    this.failedWrites = 0;
    this.failedReads = 0;
    this.cannotWrite = false;
    this.dropped.clear();
    this.clearCoins();
  }

  /** Non-critical events and decision traces were not recorded (dropped); `reason` is the database's error. */
  eventsDropped(dropped: { events: readonly EventInput[]; traces: number }, reason: string): void {
    for (const event of dropped.events) this.dropped.set(event.type, (this.dropped.get(event.type) ?? 0) + 1);
    if (dropped.traces > 0) this.dropped.set(DECISION_TRACE, (this.dropped.get(DECISION_TRACE) ?? 0) + dropped.traces);
    if (this.down || !this.due("events", this.clock())) return;
    this.logger.warn("events not recorded (non-critical, dropped)", { ...this.droppedFields(), error: reason });
    this.dropped.clear();
  }

  /** Another non-critical write failed; it is retried next tick. */
  writeFailed(operation: string, error: unknown): void {
    if (this.down || !this.due(operation, this.clock())) return;
    this.logger.warn(`${operation} failed; retrying next tick`, { error: describeError(error) });
  }

  /**
   * A coin's tick failed because the database cannot write at all (see isWriteOutage):
   * its position or order write is retried next tick. Counted; logged at most
   * once per interval, and not while the outage is being reported.
   */
  coinWriteFailed(symbol: string, error: unknown): void {
    this.coinWriteFailures += 1;
    this.coinsFailing.add(symbol);
    if (this.down || !this.due("coins", this.clock())) return;
    this.logger.warn("coin updates failing: the database cannot write; retrying next tick", { ...this.coinFields(), error: describeError(error) });
    this.clearCoins();
  }

  private coinFields(): { coinWritesFailed?: number; coinsFailing?: number } {
    return this.coinWriteFailures === 0 ? {} : { coinWritesFailed: this.coinWriteFailures, coinsFailing: this.coinsFailing.size };
  }

  private clearCoins(): void {
    this.coinWriteFailures = 0;
    this.coinsFailing.clear();
  }

  private due(kind: string, now: number): boolean {
    const last = this.lastLogged.get(kind);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.lastLogged.set(kind, now);
    return true;
  }

  private failedFields(): { failedWrites: number; failedReads?: number } {
    return { failedWrites: this.failedWrites, ...(this.failedReads > 0 ? { failedReads: this.failedReads } : {}) };
  }

  private droppedFields(): { eventsDropped: number; decisionTracesDropped: number } {
    let total = 0;
    for (const count of this.dropped.values()) total += count;
    return { eventsDropped: total, decisionTracesDropped: this.dropped.get(DECISION_TRACE) ?? 0 };
  }
}
