import Fastify, { type FastifyInstance } from "fastify";
import type { BotRuntime } from "./runtime";

/** The loop counts as stalled when no tick finished for this many intervals (and at least 5 minutes). */
const STALL_INTERVALS = 10;

/** /healthz for the platform's health check and /metrics for Prometheus. */
export async function startServer(rt: BotRuntime, options: { host: string; port: number }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get("/healthz", async (_request, reply) => {
    const { status } = rt;
    const lastProgress = status.lastProgressAt.getTime();
    const stallMs = Math.max(STALL_INTERVALS * rt.config.tick.intervalMs, 5 * 60_000);
    const stalled = Date.now() - lastProgress > stallMs;
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
      databaseDownSince: status.dbDownSince?.toISOString() ?? null,
    });
  });
  app.get("/metrics", async (_request, reply) => {
    return reply.type(rt.metrics.registry.contentType).send(await rt.metrics.registry.metrics());
  });
  await app.listen({ host: options.host, port: options.port });
  return app;
}
