-- The order ledger: every order the bot intends is a row here before it is sent, and
-- positions and trades are what the filled orders add up to. A crash between any two
-- steps leaves a row that the next start (and every tick) settles with the exchange.
-- CreateEnum
CREATE TYPE "order_status" AS ENUM ('intent', 'sent', 'open', 'partially_filled', 'filled', 'canceled', 'rejected', 'expired', 'unknown');

-- CreateEnum
CREATE TYPE "order_side" AS ENUM ('buy', 'sell');

-- CreateEnum
CREATE TYPE "order_purpose" AS ENUM ('entry', 'exit');

-- CreateEnum
CREATE TYPE "trading_mode" AS ENUM ('paper', 'live');

-- CreateTable
CREATE TABLE "orders" (
    "id" SERIAL NOT NULL,
    "exchange" TEXT NOT NULL,
    "mode" "trading_mode" NOT NULL,
    "symbol" TEXT NOT NULL,
    "side" "order_side" NOT NULL,
    "type" TEXT NOT NULL DEFAULT 'market',
    "purpose" "order_purpose" NOT NULL,
    "client_order_id" TEXT NOT NULL,
    "exchange_order_id" TEXT,
    "position_key" TEXT NOT NULL,
    "exit_reason" "exit_reason",
    "requested_amount" DECIMAL(38,18) NOT NULL,
    "requested_cost" DECIMAL(38,18),
    "reference_price" DECIMAL(38,18) NOT NULL,
    "take_profit" DECIMAL(38,18),
    "stop_loss" DECIMAL(38,18),
    "status" "order_status" NOT NULL DEFAULT 'intent',
    "filled_amount" DECIMAL(38,18) NOT NULL DEFAULT 0,
    "average_price" DECIMAL(38,18),
    "filled_cost" DECIMAL(38,18) NOT NULL DEFAULT 0,
    "fee_quote" DECIMAL(38,18) NOT NULL DEFAULT 0,
    "fee_base" DECIMAL(38,18) NOT NULL DEFAULT 0,
    "fees" JSONB NOT NULL DEFAULT '[]',
    "error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "orders_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "orders_exchange_client_order_id_key" ON "orders"("exchange", "client_order_id");

-- CreateIndex
CREATE INDEX "orders_exchange_status_idx" ON "orders"("exchange", "status");

-- CreateIndex
CREATE INDEX "orders_exchange_symbol_created_at_idx" ON "orders"("exchange", "symbol", "created_at" DESC);

-- CreateIndex
CREATE INDEX "orders_exchange_position_key_idx" ON "orders"("exchange", "position_key");

-- The entry fee still attributed to the position's remaining quantity: a partial exit
-- takes its share into that trade's fees.
-- AlterTable
ALTER TABLE "positions" ADD COLUMN "entry_fee" DECIMAL(38,18) NOT NULL DEFAULT 0;
