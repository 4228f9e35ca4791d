import type { BotLock, Database, DecisionTraceInput, EventInput } from "@candlekeep/db";
import type { Logger, Timeframe } from "@candlekeep/core";
import type { CandleManager } from "./candles/manager";
import type { BotConfig } from "./config";
import type { DecisionTraceThrottle } from "./decision-trace";
import type { Broker, MarketData } from "./exchange/types";
import type { Metrics } from "./metrics";
import type { DatabaseOutage } from "./outage";
import type { PositionManager } from "./positions/manager";

/** Everything a running bot holds; built by startup.ts, driven by tick.ts. */
export interface BotRuntime {
  config: BotConfig;
  logger: Logger;
  metrics: Metrics;
  market: MarketData;
  /** Moves the simulated clock one step; undefined on real exchanges. */
  advanceClock: (() => void) | undefined;
  broker: Broker;
  db: () => Promise<Database>;
  /** One bot per (database, exchange) may trade; lost during an outage, retaken after. */
  lock: BotLock;
  /** The tracked coins; a coin the exchange delists while the bot runs leaves it, in place (delisted.ts). */
  symbols: string[];
  timeframes: Timeframe[];
  candles: CandleManager;
  positions: PositionManager;
  traces: DecisionTraceThrottle;
  status: BotStatus;
  /** Reports failing database writes (once per interval during an outage). */
  outage: DatabaseOutage;
  /** Events and decision traces waiting to be recorded (non-critical; dropped, counted, if the database is down). */
  pendingEvents: EventInput[];
  pendingTraces: DecisionTraceInput[];
}

export interface BotStatus {
  startedAt: Date;
  ticks: number;
  lastTickAt: Date | undefined;
  /** Last sign of life of the work loop (/healthz's stall rule): a finished tick, a series of the start-up backfill, a retry of it waiting out the database. */
  lastProgressAt: Date;
  lastTickMs: number | undefined;
  lastFlushAt: Date | undefined;
  lastAccountSnapshotAt: number | undefined;
  /** Exchange time of the last tick. */
  exchangeTime: number | undefined;
  dbDownSince: Date | undefined;
  lastOutageLogAt: number | undefined;
}

export function newStatus(): BotStatus {
  return {
    startedAt: new Date(),
    ticks: 0,
    lastTickAt: undefined,
    lastProgressAt: new Date(),
    lastTickMs: undefined,
    lastFlushAt: undefined,
    lastAccountSnapshotAt: undefined,
    exchangeTime: undefined,
    dbDownSince: undefined,
    lastOutageLogAt: undefined,
  };
}
