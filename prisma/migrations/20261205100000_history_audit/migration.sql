-- The history audit: a watermark per series ("complete up to"), so a later audit reads only
-- the candles stored outside the audited range, and the missing ranges it found, so repair
-- fetches only those. Every key leads with the series and holds the symbol, so the tables can
-- be distributed by symbol like candles.
-- CreateTable
CREATE TABLE "series_audit" (
    "exchange" TEXT NOT NULL,
    "symbol" TEXT NOT NULL,
    "timeframe" TEXT NOT NULL,
    "first_open_time" TIMESTAMPTZ(3) NOT NULL,
    "audited_until" TIMESTAMPTZ(3) NOT NULL,
    "audited_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "series_audit_pkey" PRIMARY KEY ("exchange","symbol","timeframe"),
    CONSTRAINT "series_audit_timeframe_check" CHECK ("timeframe" IN ('15m', '1h', '4h', '1d')),
    CONSTRAINT "series_audit_range_check" CHECK ("first_open_time" <= "audited_until")
);

-- CreateTable
CREATE TABLE "candle_gaps" (
    "exchange" TEXT NOT NULL,
    "symbol" TEXT NOT NULL,
    "timeframe" TEXT NOT NULL,
    "from_time" TIMESTAMPTZ(3) NOT NULL,
    "to_time" TIMESTAMPTZ(3) NOT NULL,
    "missing" INTEGER NOT NULL,
    "unavailable_at" TIMESTAMPTZ(3),
    "found_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "candle_gaps_pkey" PRIMARY KEY ("exchange","symbol","timeframe","from_time"),
    CONSTRAINT "candle_gaps_timeframe_check" CHECK ("timeframe" IN ('15m', '1h', '4h', '1d')),
    CONSTRAINT "candle_gaps_range_check" CHECK ("from_time" <= "to_time" AND "missing" > 0)
);
