/**
 * Querying the bot's data with Prisma Client: the open positions with their
 * unrealised PnL at the newest stored price, and the account's equity over the
 * day up to its newest snapshot. Built with the package (`pnpm build`), run as
 *   node packages/db/dist/examples/query.js
 * with DATABASE_URL set for a server, or unset for the embedded database in
 * CANDLEKEEP_DATA_DIR (default ./.candlekeep; stop the bot first, the embedded
 * engine serves one process). query.test.ts runs this file on a seeded database.
 */
import { openPrismaClient } from "@candlekeep/db";

const DAY_MS = 24 * 60 * 60 * 1000;
// The bot's shortest default timeframe: the close of its newest candle is the latest price stored.
const PRICE_TIMEFRAME = "15m";

async function main(): Promise<void> {
  const { prisma, target, close } = await openPrismaClient({
    databaseUrl: process.env.DATABASE_URL,
    dataDir: process.env.CANDLEKEEP_DATA_DIR,
  });
  try {
    console.log(`database: ${target}`);

    const positions = await prisma.position.findMany({ orderBy: { openedAt: "asc" } });
    console.log(`open positions: ${positions.length}`);
    for (const p of positions) {
      const last = await prisma.candle.findFirst({
        where: { exchange: p.exchange, symbol: p.symbol, timeframe: PRICE_TIMEFRAME },
        orderBy: { openTime: "desc" },
        select: { close: true },
      });
      const held = `${p.symbol} ${p.side} ${p.quantity} @ ${p.entryPrice}`;
      if (last === null) {
        console.log(`  ${held}: no ${PRICE_TIMEFRAME} price stored`);
        continue;
      }
      // Amounts are Prisma Decimals (numeric columns): exact arithmetic, no float rounding.
      const perUnit = p.side === "LONG" ? p.entryPrice.minus(last.close).negated() : p.entryPrice.minus(last.close);
      console.log(`  ${held}, now ${last.close}: unrealised ${perUnit.times(p.quantity).toFixed(2)} (before fees)`);
    }

    const newest = await prisma.accountState.findFirst({ orderBy: { time: "desc" } });
    if (newest === null) {
      console.log("equity: no account snapshots yet");
      return;
    }
    const lastDay = { exchange: newest.exchange, currency: newest.currency, time: { gt: new Date(newest.time.getTime() - DAY_MS) } };
    const first = await prisma.accountState.findFirst({ where: lastDay, orderBy: { time: "asc" } });
    const range = await prisma.accountState.aggregate({ where: lastDay, _min: { equity: true }, _max: { equity: true }, _count: true });
    console.log(`equity in ${newest.currency} on ${newest.exchange}, the 24 h to ${newest.time.toISOString()}: ${range._count} snapshots`);
    console.log(`  from ${first?.equity.toFixed(2)} to ${newest.equity.toFixed(2)} (low ${range._min.equity?.toFixed(2)}, high ${range._max.equity?.toFixed(2)})`);
  } finally {
    await close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
