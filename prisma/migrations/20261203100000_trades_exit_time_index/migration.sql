-- The dashboard's trade list shows an exchange's newest trades every 5 s. The only
-- index ordered by exit time leads with the symbol, so without a symbol PostgreSQL
-- sorted every trade stored to return a page; this one hands over the page at once.
-- CreateIndex
CREATE INDEX "trades_exchange_exit_time_idx" ON "trades"("exchange", "exit_time" DESC);
