import { embeddedWrites, serverWrites, writeSizes } from "./writes";
import { parseBenchArgs, report, runMain } from "./harness";

/** `pnpm bench` for packages/db: bulk candle writes on both engines (see writes.ts). */
runMain(async () => {
  const options = parseBenchArgs(process.argv.slice(2));
  // Candles end at a fixed, past time so every run writes identical rows.
  const nowMs = Date.UTC(2026, 0, 1);
  const server = await serverWrites(options, nowMs);
  const embedded = await embeddedWrites(options, nowMs);
  const sizes = writeSizes(options.smoke);
  report(
    options,
    {
      name: "writes",
      title: "Bulk candle writes (packages/db)",
      measuredAt: new Date().toISOString(),
      smoke: options.smoke,
      repetitions: options.repeat,
      settings: { coins: sizes.coins, timeframes: 4, candlesPerSeries: sizes.perSeries, rows: sizes.coins * 4 * sizes.perSeries, warmupRuns: options.warmup },
      figures: [...server.figures, ...embedded],
    },
    { postgres: server.postgres },
  );
});
