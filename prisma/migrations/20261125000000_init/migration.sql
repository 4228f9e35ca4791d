-- CreateEnum
CREATE TYPE "position_side" AS ENUM ('LONG', 'SHORT');

-- CreateEnum
CREATE TYPE "exit_reason" AS ENUM ('TAKE_PROFIT', 'STOP_LOSS', 'SIGNAL', 'MANUAL');

-- CreateTable
CREATE TABLE "candles" (
    "exchange" TEXT NOT NULL,
    "symbol" TEXT NOT NULL,
    "timeframe" TEXT NOT NULL,
    "open_time" TIMESTAMPTZ(3) NOT NULL,
    "open" DOUBLE PRECISION NOT NULL,
    "high" DOUBLE PRECISION NOT NULL,
    "low" DOUBLE PRECISION NOT NULL,
    "close" DOUBLE PRECISION NOT NULL,
    "volume" DOUBLE PRECISION NOT NULL,
    "is_closed" BOOLEAN NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "candles_pkey" PRIMARY KEY ("exchange","symbol","timeframe","open_time"),
    -- Not expressible in schema.prisma; the database refuses what the writer's validation would.
    CONSTRAINT "candles_timeframe_check" CHECK ("timeframe" IN ('15m', '1h', '4h', '1d'))
);

-- CreateTable
CREATE TABLE "trades" (
    "id" SERIAL NOT NULL,
    "exchange" TEXT NOT NULL,
    "symbol" TEXT NOT NULL,
    "side" "position_side" NOT NULL,
    "quantity" DECIMAL(38,18) NOT NULL,
    "entry_price" DECIMAL(38,18) NOT NULL,
    "exit_price" DECIMAL(38,18) NOT NULL,
    "entry_time" TIMESTAMPTZ(3) NOT NULL,
    "exit_time" TIMESTAMPTZ(3) NOT NULL,
    "fees" DECIMAL(38,18) NOT NULL DEFAULT 0,
    "realized_pnl" DECIMAL(38,18) NOT NULL,
    "exit_reason" "exit_reason" NOT NULL,
    "entry_order_id" TEXT NOT NULL,
    "exit_order_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "trades_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "positions" (
    "id" SERIAL NOT NULL,
    "exchange" TEXT NOT NULL,
    "symbol" TEXT NOT NULL,
    "side" "position_side" NOT NULL,
    "quantity" DECIMAL(38,18) NOT NULL,
    "entry_price" DECIMAL(38,18) NOT NULL,
    "take_profit" DECIMAL(38,18),
    "stop_loss" DECIMAL(38,18),
    "entry_order_id" TEXT NOT NULL,
    "opened_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "metadata" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "positions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "system_events" (
    "id" BIGSERIAL NOT NULL,
    "time" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "type" TEXT NOT NULL,
    "symbol" TEXT,
    "level" TEXT NOT NULL DEFAULT 'info',
    "payload" JSONB NOT NULL DEFAULT '{}',
    "event_key" TEXT,

    CONSTRAINT "system_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "account_state" (
    "id" SERIAL NOT NULL,
    "time" TIMESTAMPTZ(3) NOT NULL,
    "exchange" TEXT NOT NULL,
    "currency" TEXT NOT NULL,
    "free" DECIMAL(38,18) NOT NULL,
    "used" DECIMAL(38,18) NOT NULL,
    "total" DECIMAL(38,18) NOT NULL,
    "equity" DECIMAL(38,18) NOT NULL,

    CONSTRAINT "account_state_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "trades_exchange_symbol_exit_time_idx" ON "trades"("exchange", "symbol", "exit_time" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "trades_exchange_exit_order_id_key" ON "trades"("exchange", "exit_order_id");

-- CreateIndex
CREATE UNIQUE INDEX "positions_exchange_symbol_key" ON "positions"("exchange", "symbol");

-- CreateIndex
CREATE UNIQUE INDEX "system_events_event_key_key" ON "system_events"("event_key");

-- CreateIndex
CREATE INDEX "system_events_symbol_type_time_idx" ON "system_events"("symbol", "type", "time" DESC);

-- CreateIndex
CREATE INDEX "system_events_type_time_idx" ON "system_events"("type", "time" DESC);

-- CreateIndex
CREATE INDEX "account_state_exchange_currency_time_idx" ON "account_state"("exchange", "currency", "time" DESC);
