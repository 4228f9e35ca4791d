import { DEFAULT_GAP_WINDOW_CANDLES, DEFAULT_STALE_AFTER_PERIODS } from "@candlekeep/core";
import { isRestingStop } from "@candlekeep/db";
import { createHttpServer, registerDashboard } from "dashboard";
import type { FastifyInstance } from "fastify";
import type { BotConfig } from "./config";
import type { BotRuntime } from "./runtime";

/** The longest a tick may take before /healthz calls the loop stalled, however long the interval. */
const MAX_TICK_ALLOWANCE_MS = 5 * 60_000;
/** Slack for a slow tick on a busy machine, so a short interval does not make /healthz flap. */
const STALL_SLACK_MS = 10_000;

/**
 * How long the loop may go without progress (a finished tick, a series of the
 * start-up backfill, a retry of it waiting out the database) before /healthz
 * answers 503: the wait for the next tick (at most one interval: ticks start an
 * interval apart), the time that tick may take (one more interval, at most 5
 * minutes), and 10 s of slack. So interval + min(interval, 5 min) + 10 s: two
 * intervals + 10 s up to a 5-minute interval (2 min 10 s at the default 60 s,
 * 10.2 s at 100 ms), one interval + 5 min 10 s above it (1 h 5 min 10 s at an
 * hourly tick), not two hours.
 */
export function stallAfterMs(intervalMs: number): number {
  return intervalMs + Math.min(intervalMs, MAX_TICK_ALLOWANCE_MS) + STALL_SLACK_MS;
}

/** /healthz for the platform's health check and /metrics for Prometheus; the dashboard too when enabled. */
export async function startServer(rt: BotRuntime, options: BotConfig["server"]): Promise<FastifyInstance> {
  // Connection cap and timeouts: idle or slow clients can starve neither /healthz nor the bot's descriptors.
  const app = createHttpServer({ poolMax: rt.config.database.poolMax, logger: rt.logger });
  app.get("/healthz", async (_request, reply) => {
    const { status } = rt;
    const lastProgress = status.lastProgressAt.getTime();
    const stalled = Date.now() - lastProgress > stallAfterMs(rt.config.tick.intervalMs);
    return reply.code(stalled ? 503 : 200).send({
      status: stalled ? "stalled" : "ok",
      startedAt: status.startedAt.toISOString(),
      ticks: status.ticks,
      lastTickAt: status.lastTickAt?.toISOString() ?? null,
      lastTickMs: status.lastTickMs ?? null,
      lastFlushAt: status.lastFlushAt?.toISOString() ?? null,
      exchangeTime: status.exchangeTime === undefined ? null : new Date(status.exchangeTime).toISOString(),
      pendingCandles: rt.candles.pendingCount,
      openPositions: rt.positions.all().length,
      // Orders whose outcome the bot does not know yet: their coins trade nothing new until settled.
      unsettledOrders: rt.positions.unsettledOrders().filter((order) => !isRestingStop(order)).map((order) => ({ symbol: order.symbol, side: order.side, status: order.status, clientOrderId: order.clientOrderId, since: order.createdAt.toISOString() })),
      databaseDownSince: status.dbDownSince?.toISOString() ?? null,
    });
  });
  app.get("/metrics", async (_request, reply) => {
    return reply.type(rt.metrics.registry.contentType).send(await rt.metrics.registry.metrics());
  });
  if (options.dashboard.enabled) {
    // The bot's own view: its resolved coins and live status, which the database alone cannot tell.
    await registerDashboard(app, {
      host: options.host,
      hostSetting: "HOST",
      token: options.dashboard.token,
      source: {
        db: rt.db,
        databaseKind: rt.config.database.url === undefined ? "embedded" : "server",
        logger: rt.logger,
        exchange: rt.market.id,
        timeframes: rt.timeframes,
        coins: () => Promise.resolve({ symbols: rt.symbols, source: "the running bot's coins" }),
        staleAfterPeriods: DEFAULT_STALE_AFTER_PERIODS,
        gapWindowCandles: DEFAULT_GAP_WINDOW_CANDLES,
        storageBudgetBytes: options.dashboard.storageBudgetBytes,
        // Freshness against the exchange's clock: the simulated one replays from the past towards the wall clock.
        now: () => rt.market.now(),
        live: () => ({
          startedAt: rt.status.startedAt,
          ticks: rt.status.ticks,
          lastTickAt: rt.status.lastTickAt,
          lastFlushAt: rt.status.lastFlushAt,
          pendingCandles: rt.candles.pendingCount,
          databaseDownSince: rt.status.dbDownSince,
        }),
      },
    });
  }
  await app.listen({ host: options.host, port: options.port });
  return app;
}
