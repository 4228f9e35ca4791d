// The dashboard's read-only JSON API (/api/*) over packages/db reads, answering during a database outage.
import { performance } from "node:perf_hooks";
import { TIMEFRAME_MS, alignToTimeframe, candlesBehind, describeError, isTimeframe, redactText, seriesFreshness, type Freshness, type Logger, type Timeframe } from "@candlekeep/core";
import {
  accountHistory,
  candleCoverage,
  countUnsettledOrders,
  databaseGrowth,
  isFinalOrderStatus,
  latestCandlesPerSeries,
  latestEvents,
  latestDecisionTraces,
  newestDecisionTraceTime,
  DECISION_TRACE,
  type StoredDecisionTrace,
  type StoredEvent,
  listCandleGaps,
  listOpenPositions,
  listOrders,
  listTrades,
  migrationStatus,
  recentCandles,
  seriesAuditStates,
  STORAGE_LOW_DAYS,
  storageOutlook,
  type CandleGap,
  type Database,
  type DatabaseGrowth,
  type DatabaseKind,
  type TrackedCoins,
} from "@candlekeep/db";
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import { z } from "zod";
import type { CandlesResponse, CoverageResponse, GapRange, OrdersResponse, SeriesCell, StorageJson, SystemResponse } from "./api-types";
import { DATABASE_READ_DEADLINE_MS, DatabaseDownError, DatabaseHealth, isConnectionFailure, withDeadline } from "./database-health";

/** What the bot knows and the database does not: passed in when the bot serves the dashboard. */
export interface LiveStatus {
  startedAt: Date;
  ticks: number;
  lastTickAt: Date | undefined;
  lastFlushAt: Date | undefined;
  pendingCandles: number;
  databaseDownSince: Date | undefined;
}

/** Where the API reads from; the bot and the standalone server each build one. */
export interface DashboardSource {
  db: () => Promise<Database>;
  /** Known without reaching the database: the system panel says which kind is down. */
  databaseKind: DatabaseKind;
  exchange: string;
  timeframes: readonly Timeframe[];
  /** The coins to show (the bot: its resolved coins; standalone: trackedCoins from the settings). */
  coins: () => Promise<TrackedCoins>;
  /** verify's thresholds, so colours and verify's verdict agree. */
  staleAfterPeriods: number;
  gapWindowCandles: number;
  /** DATABASE_STORAGE_BUDGET in bytes, for the days of growth left; undefined: none set. */
  storageBudgetBytes?: number | undefined;
  /** Live bot status; undefined when running standalone. */
  live?: (() => LiveStatus) | undefined;
  migrationsDir?: string | undefined;
  /** The clock freshness is judged against (tests pin it). */
  now?: () => number;
  /** Where failed reads and outages are logged (the page gets no details). */
  logger?: Logger | undefined;
  /** How long a read may wait for the database before it counts as down (default DATABASE_READ_DEADLINE_MS). */
  readDeadlineMs?: number;
}

/** A request the client can fix: answered 400 with the message. */
export class BadRequestError extends Error {
  override readonly name = "BadRequestError";
}

const MAX_CANDLES = 5000;
/**
 * The storage figures are read at most this often: reading them counts a week of
 * rows of each table (tens of ms to a few hundred at a year of 500 coins), and a
 * day's growth does not change between two polls.
 */
export const STORAGE_REFRESH_MS = 60_000;
/** Gap ranges sent per series, the newest: the count says how many there are in all. */
export const MAX_GAP_RANGES = 10;

/** A parameter's value for a message: quoted, and cut short (it is the client's text). */
const shown = (value: string) => JSON.stringify(value.length > 24 ? `${value.slice(0, 24)}…` : value);

/**
 * `limit`: decimal digits only (no sign, exponent, hex, spaces or fraction), from 1 to `max`;
 * `fallback` when absent. Anything else is refused, not rounded or clamped.
 */
const limit = (max: number, fallback: number) =>
  z
    .unknown()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return fallback;
      const expected = `limit must be a whole number from 1 to ${max}, in decimal digits`;
      if (typeof value !== "string") {
        ctx.addIssue({ code: "custom", message: `${expected}, given once` });
        return z.NEVER;
      }
      const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : Number.NaN;
      if (n >= 1 && n <= max) return n;
      ctx.addIssue({ code: "custom", message: `${expected} (got ${shown(value)})` });
      return z.NEVER;
    });

/** A text parameter given once (a repeated one arrives as a list). */
const text = (name: string) => z.string({ error: `${name} must be given once` });

const candlesQuery = z.strictObject({ timeframe: text("timeframe").optional(), limit: limit(MAX_CANDLES, 300) });
const eventsQuery = z.strictObject({
  type: text("type")
    .regex(/^[A-Z_]{1,40}$/, "type must be an event type such as DECISION_TRACE or ERROR")
    .default("DECISION_TRACE"),
  limit: limit(200, 20),
});
const tradesQuery = z.strictObject({ symbol: text("symbol").optional(), limit: limit(1000, 50) });
const ordersQuery = z.strictObject({ symbol: text("symbol").optional(), limit: limit(1000, 50) });
const equityQuery = z.strictObject({ limit: limit(10_000, 500) });
const noQuery = z.strictObject({});

/** Parses `value` with `schema`, or throws one readable line naming each bad parameter. */
function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") return `unknown query parameter${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}`;
    return issue.message;
  });
  throw new BadRequestError(lines.join("; "));
}

/** One series' gaps (oldest first) as a cell shows them: how many, the candles missing, the newest MAX_GAP_RANGES ranges. */
function historyGaps(gaps: readonly CandleGap[]): SeriesCell["historyGaps"] {
  const newest: GapRange[] = gaps.slice(-MAX_GAP_RANGES).map((gap) => ({ fromTime: gap.fromTime, toTime: gap.toTime, missing: gap.missing }));
  return { count: gaps.length, missing: gaps.reduce((sum, gap) => sum + gap.missing, 0), newest };
}

/** The database's growth as the system panel shows it, judged against `budgetBytes` when set. */
function storageJson(growth: DatabaseGrowth, measuredAt: number, budgetBytes: number | undefined): StorageJson {
  const outlook = budgetBytes === undefined ? undefined : storageOutlook(growth.databaseBytes, growth.bytesPerDay, budgetBytes);
  return {
    measuredAt: new Date(measuredAt).toISOString(),
    databaseBytes: growth.databaseBytes,
    bytesPerDay: growth.bytesPerDay,
    budget: outlook === undefined ? null : { bytes: outlook.budgetBytes, leftBytes: outlook.leftBytes, daysLeft: outlook.daysLeft, state: outlook.state, lowDays: STORAGE_LOW_DAYS },
    tables: growth.tables.map((t) => ({
      table: t.table,
      bytes: t.bytes,
      rows: t.rows,
      rowsCounted: t.rowsSource === "counted",
      rowsPerDay: t.growth.kind === "measured" ? t.growth.rowsPerDay : null,
      bytesPerDay: t.growth.kind === "measured" ? t.growth.bytesPerDay : null,
      note: t.growth.kind === "measured" ? null : t.growth.reason,
    })),
  };
}

/** A decision trace in the events API's shape: its key (exchange, coin, time) as its id. */
const traceAsEvent = (trace: StoredDecisionTrace): StoredEvent => ({
  id: `${trace.exchange}:${trace.symbol}:${trace.time.getTime()}`,
  time: trace.time,
  type: DECISION_TRACE,
  symbol: trace.symbol,
  level: trace.level,
  payload: trace.payload,
});

/** The later of two times, either possibly missing. */
const latestOf = (a: Date | undefined, b: Date | undefined): Date | undefined => (a === undefined || (b !== undefined && b > a) ? b : a);

/** "BTC-USDT" and "btc/usdt" both name BTC/USDT: a dash is easier to put in a URL than %2F, and no symbol contains one. */
const normalizeSymbol = (raw: string) => raw.trim().toUpperCase().replace(/-/g, "/");

/** The code of a database error (SQLSTATE or node's), or its name: all the page is told about a failed read. */
function errorKind(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" && /^[A-Z0-9_]{1,40}$/.test(error.code)) return error.code;
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Read-only JSON API over packages/db. Every route is a GET. While the database
 * cannot be reached, /api/system still answers (saying since when) and the
 * other routes answer 503; nothing sent names the database's host or port.
 */
export function dashboardApi(source: DashboardSource): FastifyPluginAsync {
  const now = source.now ?? Date.now;
  const health = new DatabaseHealth(source.logger);
  const deadlineMs = source.readDeadlineMs ?? DATABASE_READ_DEADLINE_MS;

  /** A failure to reach the database becomes DatabaseDownError (answered 503); others are left as they are. */
  function outage(error: unknown): never {
    if (isConnectionFailure(error)) throw new DatabaseDownError(health.failed(error));
    throw error;
  }
  /** Runs `work` against the database within the deadline; its success ends an outage. */
  async function read<T>(work: (db: Database) => Promise<T>): Promise<T> {
    const result = await withDeadline(source.db().then(work), deadlineMs).catch(outage);
    health.succeeded();
    return result;
  }
  let storage: { readAtMs: number; value: StorageJson } | undefined;
  /** The storage figures, read again once STORAGE_REFRESH_MS have passed (by the machine's clock: the source's may replay the past). */
  async function storageFigures(db: Database): Promise<StorageJson> {
    if (storage !== undefined && performance.now() - storage.readAtMs < STORAGE_REFRESH_MS) return storage.value;
    const measuredAt = now();
    const value = storageJson(await databaseGrowth(db, { nowMs: measuredAt }), measuredAt, source.storageBudgetBytes);
    storage = { readAtMs: performance.now(), value };
    return value;
  }
  // The standalone dashboard reads its coin list (top:N) from the database, at times; the bot's is in memory.
  const trackedCoins = (): Promise<TrackedCoins> => withDeadline(source.coins(), deadlineMs).catch(outage);

  async function trackedSymbol(raw: string): Promise<string> {
    const symbol = normalizeSymbol(raw);
    const { symbols } = await trackedCoins();
    if (!symbols.includes(symbol)) throw new BadRequestError(`unknown symbol "${raw}": not one of the ${symbols.length} tracked coins (GET /api/coverage lists them)`);
    return symbol;
  }

  function trackedTimeframe(raw: string | undefined): Timeframe {
    const tf = raw ?? source.timeframes[0];
    if (tf === undefined || !isTimeframe(tf) || !source.timeframes.includes(tf)) {
      throw new BadRequestError(`unknown timeframe "${raw ?? ""}": use one of ${source.timeframes.join(", ")}`);
    }
    return tf;
  }

  return async (app: FastifyInstance) => {
    app.setErrorHandler(async (error, request, reply) => {
      if (error instanceof BadRequestError) return reply.code(400).send({ error: error.message });
      if (error instanceof DatabaseDownError) return reply.code(503).header("retry-after", "5").send({ error: error.message });
      const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
      if (code === "FST_ERR_HANDLER_TIMEOUT") return reply.code(503).header("retry-after", "5").send({ error: "the request took too long; try again" });
      // Fastify's own 4xx (e.g. a malformed URL) keep their status and message.
      const status = typeof error === "object" && error !== null && "statusCode" in error && typeof error.statusCode === "number" ? error.statusCode : 500;
      if (status < 500) return reply.code(status).send({ error: redactText(describeError(error)) });
      // A failed read: its message may name the server, so the page gets its code only; the log has the rest.
      source.logger?.error("dashboard: a read failed", { url: request.url, error: redactText(describeError(error)) });
      return reply.code(500).send({ error: `reading the database failed (${errorKind(error)}); the dashboard's log has the details` });
    });

    app.get("/api/coverage", async (request): Promise<CoverageResponse> => {
      parse(noQuery, request.query);
      const nowMs = now();
      const tracked = await trackedCoins();
      const selection = { exchange: source.exchange, symbols: tracked.symbols, timeframes: source.timeframes };
      // What the history audit (verify's history check) recorded: read here, never audited on a poll.
      const [rows, gaps, audits] = await read((db) =>
        Promise.all([candleCoverage(db, { ...selection, windowCandles: source.gapWindowCandles, nowMs }), listCandleGaps(db, selection), seriesAuditStates(db, selection)]),
      );
      const key = (series: { symbol: string; timeframe: string }) => `${series.symbol}|${series.timeframe}`;
      const gapsBySeries = new Map<string, CandleGap[]>();
      for (const gap of gaps) gapsBySeries.set(key(gap), [...(gapsBySeries.get(key(gap)) ?? []), gap]);
      const completeUpTo = new Map(audits.map((audit) => [key(audit), audit.auditedUntil]));
      const totals: Record<Freshness, number> = { fresh: 0, late: 0, stale: 0, missing: 0 };
      const bySymbol = new Map<string, Partial<Record<Timeframe, SeriesCell>>>(tracked.symbols.map((s) => [s, {}]));
      for (const row of rows) {
        const state = seriesFreshness(row, source.staleAfterPeriods, nowMs);
        totals[state] += 1;
        const cells = bySymbol.get(row.symbol);
        if (cells) {
          cells[row.timeframe] = {
            state,
            firstOpenTime: row.firstOpenTime,
            lastOpenTime: row.lastOpenTime,
            behind: row.lastOpenTime === null ? null : candlesBehind(row.lastOpenTime, row.timeframe, nowMs),
            recentGaps: row.recentGaps,
            historyGaps: historyGaps(gapsBySeries.get(key(row)) ?? []),
            completeUpTo: completeUpTo.get(key(row)) ?? null,
          };
        }
      }
      return {
        exchange: source.exchange,
        now: nowMs,
        coinsSource: tracked.source,
        timeframes: [...source.timeframes],
        staleAfterPeriods: source.staleAfterPeriods,
        gapWindowCandles: source.gapWindowCandles,
        totals,
        historyGaps: { series: gapsBySeries.size, ranges: gaps.length, missing: gaps.reduce((sum, gap) => sum + gap.missing, 0) },
        coins: [...bySymbol].map(([symbol, series]) => ({ symbol, series })),
      };
    });

    app.get<{ Params: { symbol: string } }>("/api/coins/:symbol/candles", async (request): Promise<CandlesResponse> => {
      const query = parse(candlesQuery, request.query);
      const symbol = await trackedSymbol(request.params.symbol);
      const timeframe = trackedTimeframe(query.timeframe);
      const [candles, trades, positions] = await read((db) =>
        Promise.all([
          recentCandles(db, { exchange: source.exchange, symbol, timeframe }, query.limit),
          listTrades(db, { exchange: source.exchange, symbol, limit: 500 }),
          listOpenPositions(db, { exchange: source.exchange }),
        ]),
      );
      const first = candles[0]?.openTime ?? Number.POSITIVE_INFINITY;
      // Markers sit on the candle the entry or exit happened in, and only within the candles shown.
      const onCandle = (time: Date) => alignToTimeframe(time.getTime(), timeframe);
      const markers = [
        ...trades.flatMap((t) => [
          { time: onCandle(t.entryTime), kind: "entry" as const, side: t.side, price: t.entryPrice, tradeId: t.id },
          { time: onCandle(t.exitTime), kind: "exit" as const, side: t.side, price: t.exitPrice, tradeId: t.id, exitReason: t.exitReason, realizedPnl: t.realizedPnl },
        ]),
        ...positions.filter((p) => p.symbol === symbol).map((p) => ({ time: onCandle(p.openedAt), kind: "entry" as const, side: p.side, price: p.entryPrice, tradeId: null })),
      ]
        .filter((m) => m.time >= first)
        .sort((a, b) => a.time - b.time);
      return {
        symbol,
        timeframe,
        candles: candles.map((c) => ({ openTime: c.openTime, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, isClosed: c.isClosed })),
        markers,
      };
    });

    app.get<{ Params: { symbol: string } }>("/api/coins/:symbol/events", async (request) => {
      const query = parse(eventsQuery, request.query);
      const symbol = await trackedSymbol(request.params.symbol);
      const events = await read((db) =>
        query.type === DECISION_TRACE ? latestDecisionTraces(db, { exchange: source.exchange, symbol, limit: query.limit }).then((traces) => traces.map(traceAsEvent)) : latestEvents(db, { symbol, type: query.type, limit: query.limit }),
      );
      return { symbol, type: query.type, events };
    });

    app.get("/api/positions", async (request) => {
      parse(noQuery, request.query);
      // The last stored price: the newest candle of the shortest tracked timeframe, the one updated most often.
      const shortest = [...source.timeframes].sort((a, b) => TIMEFRAME_MS[a] - TIMEFRAME_MS[b])[0];
      const { positions, last } = await read(async (db) => {
        const open = await listOpenPositions(db, { exchange: source.exchange });
        const candles = shortest === undefined || open.length === 0 ? [] : await latestCandlesPerSeries(db, { exchange: source.exchange, symbols: open.map((p) => p.symbol), timeframes: [shortest], perSeries: 1 });
        return { positions: open, last: candles };
      });
      const lastBySymbol = new Map(last.map((c) => [c.symbol, c]));
      const rows = positions.map((p) => {
        const candle = lastBySymbol.get(p.symbol);
        const lastPrice = candle?.close ?? null;
        // Before fees: fees are known only when the position closes.
        const unrealizedPnl = lastPrice === null ? null : (p.side === "LONG" ? lastPrice - p.entryPrice : p.entryPrice - lastPrice) * p.quantity;
        return {
          symbol: p.symbol,
          side: p.side,
          quantity: p.quantity,
          entryPrice: p.entryPrice,
          takeProfit: p.takeProfit,
          stopLoss: p.stopLoss,
          openedAt: p.openedAt,
          lastPrice,
          lastPriceTime: candle?.openTime ?? null,
          unrealizedPnl,
        };
      });
      return { positions: rows, totalUnrealizedPnl: rows.reduce((sum, r) => sum + (r.unrealizedPnl ?? 0), 0) };
    });

    app.get("/api/trades", async (request) => {
      const query = parse(tradesQuery, request.query);
      const symbol = query.symbol === undefined ? undefined : await trackedSymbol(query.symbol);
      const trades = await read((db) => listTrades(db, { exchange: source.exchange, ...(symbol === undefined ? {} : { symbol }), limit: query.limit }));
      return { trades };
    });

    app.get("/api/orders", async (request): Promise<OrdersResponse> => {
      const query = parse(ordersQuery, request.query);
      const symbol = query.symbol === undefined ? undefined : await trackedSymbol(query.symbol);
      const orders = await read((db) => listOrders(db, { exchange: source.exchange, ...(symbol === undefined ? {} : { symbol }), limit: query.limit }));
      return {
        orders: orders.map((o) => ({
          id: o.id,
          mode: o.mode,
          symbol: o.symbol,
          side: o.side,
          purpose: o.purpose,
          status: o.status,
          settled: isFinalOrderStatus(o.status),
          clientOrderId: o.clientOrderId,
          exchangeOrderId: o.exchangeOrderId,
          exitReason: o.exitReason,
          requestedAmount: o.requestedAmount,
          requestedCost: o.requestedCost,
          referencePrice: o.referencePrice,
          filledAmount: o.filledAmount,
          averagePrice: o.averagePrice,
          filledCost: o.filledCost,
          feeQuote: o.feeQuote,
          fees: o.fees,
          error: o.error,
          createdAt: o.createdAt.toISOString(),
          updatedAt: o.updatedAt.toISOString(),
        })),
      };
    });

    app.get("/api/equity", async (request) => {
      const query = parse(equityQuery, request.query);
      const history = await read((db) => accountHistory(db, { exchange: source.exchange, limit: query.limit }));
      const byCurrency = new Map<string, { time: number; equity: number; total: number }[]>();
      // accountHistory is newest first; a chart wants oldest first.
      for (const s of [...history].reverse()) {
        const points = byCurrency.get(s.currency) ?? [];
        points.push({ time: s.time.getTime(), equity: s.equity, total: s.total });
        byCurrency.set(s.currency, points);
      }
      return { series: [...byCurrency].map(([currency, points]) => ({ currency, points })) };
    });

    // Answers during an outage too: what the bot knows, and since when the database is down.
    app.get("/api/system", async (request): Promise<SystemResponse> => {
      parse(noQuery, request.query);
      let stored: Awaited<ReturnType<typeof readSystem>> | undefined;
      try {
        stored = await read(readSystem);
      } catch (error) {
        if (!(error instanceof DatabaseDownError)) throw error;
      }
      const live = source.live?.();
      const iso = (d: Date | undefined) => d?.toISOString() ?? null;
      return {
        mode: live ? "bot" : "standalone",
        now: now(),
        exchange: source.exchange,
        database: { kind: source.databaseKind, downSince: iso(health.since) },
        bot: live
          ? { startedAt: live.startedAt.toISOString(), ticks: live.ticks, lastTickAt: iso(live.lastTickAt), lastFlushAt: iso(live.lastFlushAt), pendingCandles: live.pendingCandles, databaseDownSince: iso(live.databaseDownSince) }
          : null,
        lastEventAt: stored?.lastEventAt ?? null,
        orders: stored?.orders ?? null,
        migrations: stored?.migrations ?? null,
        errors: stored?.errors ?? null,
        storage: stored?.storage ?? null,
      };
    });

    async function readSystem(db: Database) {
      const [migrations, errors, newest, newestTrace, orders, storageNow] = await Promise.all([
        migrationStatus(db, { migrationsDir: source.migrationsDir }),
        latestEvents(db, { type: "ERROR", limit: 20 }),
        latestEvents(db, { limit: 1 }),
        newestDecisionTraceTime(db, source.exchange),
        countUnsettledOrders(db, { exchange: source.exchange }),
        storageFigures(db),
      ]);
      return {
        lastEventAt: latestOf(newest[0]?.time, newestTrace)?.toISOString() ?? null,
        orders,
        migrations: {
          upToDate: migrations.pending.length + migrations.failed.length + migrations.modified.length === 0,
          applied: migrations.applied.length,
          pending: migrations.pending,
          failed: migrations.failed,
          modified: migrations.modified,
          unknown: migrations.unknown,
        },
        errors: errors.map((e) => ({ ...e, time: e.time.toISOString() })),
        storage: storageNow,
      };
    }
  };
}
