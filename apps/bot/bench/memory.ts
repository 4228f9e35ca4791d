import { parseBenchArgs, report, runMain, withGoal, type Figure } from "../../../packages/db/bench/harness";
import { forgetLogLines, startBenchBot } from "./setup";

/**
 * Memory of a running bot: RSS and V8 heap after a garbage collection, sampled
 * while it ticks 100 times over 500 coins × 4 timeframes holding 300 candles
 * per series. Flat means no growth from tick 20 (history full, caches warm) to
 * tick 100. Runs in its own process (bench/main.ts starts it with --expose-gc),
 * so nothing else measured before inflates the figures.
 */

const RSS_GOAL_MB = 250;
/** Growth of the heap from tick 20 to 100 still called flat: noise of a few allocations, no per-tick leak. */
const FLAT_HEAP_MB = 5;
const MB = 2 ** 20;

function sample(): { rss: number; heap: number } {
  if (!gc) throw new Error("run with node --expose-gc (bench/main.ts does)");
  // Twice: the first pass may only finalise what the second frees.
  gc();
  gc();
  const usage = process.memoryUsage();
  return { rss: usage.rss / MB, heap: usage.heapUsed / MB };
}

runMain(async () => {
  const options = parseBenchArgs(process.argv.slice(2));
  const coins = options.smoke ? 5 : 500;
  const history = options.smoke ? 100 : 300;
  const ticks = options.smoke ? 10 : 100;
  const baselineTick = options.smoke ? 2 : 20;
  const started = await startBenchBot({ coins, history, ticks });
  const samples = new Map<number, { rss: number; heap: number }>();
  let logLines = 0;
  try {
    samples.set(0, sample());
    for (let tick = 1; tick <= ticks; tick += 1) {
      const [result] = await started.bot.ticks(1);
      if (result?.flushError !== undefined) throw new Error(`tick ${tick}: ${result.flushError}`);
      logLines += forgetLogLines(started.bot);
      if (tick % 10 === 0 || tick === baselineTick) samples.set(tick, sample());
    }
  } finally {
    await started.stop();
  }
  const at = (tick: number) => {
    const s = samples.get(tick);
    if (!s) throw new Error(`no sample at tick ${tick}`);
    return s;
  };
  const end = at(ticks);
  const base = at(baselineTick);
  const text = `${coins} coins × 4 timeframes, ${history} candles per series`;
  const figures: Figure[] = [
    { id: "memory.start.rss", label: `RSS after start-up (${text})`, value: at(0).rss, unit: "MB" },
    withGoal({ id: "memory.rss", label: `RSS after ${ticks} ticks`, value: end.rss, unit: "MB" }, `≤ ${RSS_GOAL_MB} MB`, end.rss <= RSS_GOAL_MB),
    { id: "memory.heap", label: `V8 heap used after ${ticks} ticks`, value: end.heap, unit: "MB" },
    withGoal(
      { id: "memory.heap.growth", label: `heap growth, tick ${baselineTick} → ${ticks}`, value: end.heap - base.heap, unit: "MB" },
      `flat: ≤ ${FLAT_HEAP_MB} MB`,
      end.heap - base.heap <= FLAT_HEAP_MB,
    ),
    { id: "memory.rss.growth", label: `RSS growth, tick ${baselineTick} → ${ticks}`, value: end.rss - base.rss, unit: "MB" },
  ];
  report(options, {
    name: "memory",
    title: "Bot memory (apps/bot)",
    measuredAt: new Date().toISOString(),
    smoke: options.smoke,
    repetitions: 1,
    settings: {
      coins,
      timeframes: 4,
      historyCandles: history,
      ticks,
      // Every sample, so growth over the run is visible, not only its ends.
      heapMbByTick: [...samples].map(([tick, s]) => `${tick}:${s.heap.toFixed(1)}`).join(" "),
      rssMbByTick: [...samples].map(([tick, s]) => `${tick}:${s.rss.toFixed(1)}`).join(" "),
      logLinesDropped: logLines,
    },
    figures,
  });
});
