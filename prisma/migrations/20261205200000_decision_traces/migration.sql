-- Decision traces move out of system_events into a table of their own, keyed by what makes a
-- trace unique: one per coin per tick of exchange time. The key holds the symbol and the time, so
-- the table can be distributed by symbol (Citus, beside candles) or split by time (partitions, a
-- TimescaleDB hypertable), and a trace carries one index entry instead of four.
-- system_events keeps the audit trail (orders, positions, start-ups, errors), a few rows per trade.
-- CreateTable
CREATE TABLE "decision_traces" (
    "exchange" TEXT NOT NULL,
    "symbol" TEXT NOT NULL,
    "time" TIMESTAMPTZ(3) NOT NULL,
    "level" TEXT NOT NULL DEFAULT 'info',
    "payload" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "decision_traces_pkey" PRIMARY KEY ("exchange","symbol","time")
);

-- The traces stored so far: the exchange is the first part of their event key ("<exchange>:decision:<symbol>:<ms>").
INSERT INTO "decision_traces" ("exchange", "symbol", "time", "level", "payload")
SELECT coalesce(nullif(split_part("event_key", ':', 1), ''), 'unknown'), "symbol", "time", "level", "payload"
FROM "system_events"
WHERE "type" = 'DECISION_TRACE' AND "symbol" IS NOT NULL
ON CONFLICT DO NOTHING;

DELETE FROM "system_events" WHERE "type" = 'DECISION_TRACE' AND "symbol" IS NOT NULL;
