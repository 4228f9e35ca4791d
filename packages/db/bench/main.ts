import { embeddedWrites, serverWrites, writeSizes } from "./writes";
import { historyAudit, historySize } from "./history";
import { parseBenchArgs, report, runMain, USAGE } from "./harness";

/** `pnpm bench` for packages/db: bulk candle writes on both engines (see writes.ts) and the history audit (history.ts). */

const BENCHMARKS = ["writes", "history"] as const;
type Benchmark = (typeof BENCHMARKS)[number];

const DB_USAGE = `${USAGE}
  --only NAME           run one benchmark: ${BENCHMARKS.join(" or ")} (default: both)
  --history-coins N     coins of the history audit's generated table (default 100, smoke 3; the issue's size: 500)
  --history-days N      days of candles per series (default 730, smoke 10)`;

interface DbBenchArgs {
  only: Benchmark | undefined;
  historyCoins: number | undefined;
  historyDays: number | undefined;
  /** Everything else, for parseBenchArgs. */
  rest: string[];
}

function wholeNumber(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number ≥ 1 (got ${value ?? "nothing"})\n${DB_USAGE}`);
  return n;
}

/** This package's own flags; the shared ones are left to parseBenchArgs. */
function parseDbBenchArgs(argv: readonly string[]): DbBenchArgs {
  const args: DbBenchArgs = { only: undefined, historyCoins: undefined, historyDays: undefined, rest: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? "";
    if (arg === "--only") {
      const name = argv[(i += 1)];
      const benchmark = BENCHMARKS.find((b) => b === name);
      if (benchmark === undefined) throw new Error(`--only takes ${BENCHMARKS.join(" or ")} (got ${name ?? "nothing"})\n${DB_USAGE}`);
      args.only = benchmark;
    } else if (arg === "--history-coins") args.historyCoins = wholeNumber(arg, argv[(i += 1)]);
    else if (arg === "--history-days") args.historyDays = wholeNumber(arg, argv[(i += 1)]);
    else args.rest.push(arg);
  }
  return args;
}

runMain(async () => {
  const args = parseDbBenchArgs(process.argv.slice(2));
  const options = parseBenchArgs(args.rest);
  const runs = (benchmark: Benchmark) => args.only === undefined || args.only === benchmark;
  if (runs("writes")) {
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
  }
  if (runs("history")) {
    const size = historySize(options.smoke, args.historyCoins, args.historyDays);
    const history = await historyAudit(options, size);
    report(options, {
      name: "history",
      title: `History audit (packages/db, server): ${size.days} days × ${size.coins} coins × 4 timeframes`,
      measuredAt: new Date().toISOString(),
      smoke: options.smoke,
      repetitions: options.repeat,
      settings: { ...history.settings, warmupRuns: options.warmup },
      figures: history.figures,
    });
  }
});
