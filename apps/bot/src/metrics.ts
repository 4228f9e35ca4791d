import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The bot's Prometheus metrics, on their own registry (no global state). */
export function createMetrics() {
  const registry = new Registry();
  const metrics = {
    registry,
    tickDuration: new Histogram({
      name: "candlekeep_tick_duration_seconds",
      help: "Wall time of one tick over all coins, flush included",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    tickPhaseDuration: new Histogram({
      name: "candlekeep_tick_phase_duration_seconds",
      help: "Wall time of each consecutive part of a tick: account, fetch, decide, writeWait (see TICK_PHASES)",
      labelNames: ["phase"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    ticks: new Counter({ name: "candlekeep_ticks_total", help: "Ticks run", registers: [registry] }),
    coinsProcessed: new Counter({ name: "candlekeep_coins_processed_total", help: "Coin updates that succeeded", registers: [registry] }),
    coinsFailed: new Counter({ name: "candlekeep_coins_failed_total", help: "Coin updates that failed (exchange, data or position errors)", registers: [registry] }),
    candlesWritten: new Counter({ name: "candlekeep_candles_written_total", help: "Candle rows inserted or changed", registers: [registry] }),
    candlesRejected: new Counter({ name: "candlekeep_candles_rejected_total", help: "Candles rejected as invalid", registers: [registry] }),
    candlesDeferred: new Counter({ name: "candlekeep_candles_deferred_total", help: "Fetched candles refused because MAX_PENDING_CANDLES wait to be written (fetched again later)", registers: [registry] }),
    pendingCandles: new Gauge({ name: "candlekeep_pending_candles", help: "Candles waiting to be written", registers: [registry] }),
    dbErrors: new Counter({ name: "candlekeep_db_errors_total", help: "Failed database writes", labelNames: ["operation"] as const, registers: [registry] }),
    eventsDropped: new Counter({ name: "candlekeep_events_dropped_total", help: "Non-critical events not recorded", registers: [registry] }),
    openPositions: new Gauge({ name: "candlekeep_open_positions", help: "Open positions", registers: [registry] }),
    tradesClosed: new Counter({ name: "candlekeep_trades_closed_total", help: "Positions closed with a trade", labelNames: ["reason"] as const, registers: [registry] }),
    lastTick: new Gauge({ name: "candlekeep_last_tick_timestamp_seconds", help: "When the last tick finished", registers: [registry] }),
    lastFlush: new Gauge({ name: "candlekeep_last_flush_timestamp_seconds", help: "When pending candles were last written successfully", registers: [registry] }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
