import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { median, parseBenchArgs, percentile, report, runMain, timingFigure, withGoal, type Figure } from "../../../packages/db/bench/harness";
import { TICK_PHASES, type TickPhase } from "../src/tick";
import { postgresCpuMs, processCpuMs } from "./cpu";
import { forgetLogLines, startBenchBot } from "./setup";

/**
 * Tick overhead: the bot's whole tick (fetch from the sim, validate, strategy,
 * positions, decision traces, the candle flush awaited, events, account
 * snapshot) at 50, 500 and 2,000 coins × 4 timeframes, its phases, and the
 * CPU time the bot and PostgreSQL spent on it (bench/cpu.ts).
 */

const TICK_GOAL_MS = 50;

/** The tick's consecutive parts (TickReport.phasesMs), each reported as its own median. */
const PHASE_LABELS: Record<TickPhase, string> = {
  account: "phase: balances and bot lock",
  fetch: "phase: fetch and validate every coin's candles",
  decide: "phase: decisions and orders (the candle write runs meanwhile)",
  writeWait: "phase: waiting for the writes after the decisions",
};
const GOAL_COINS = 500;
const CORES = availableParallelism();

runMain(async () => {
  const options = parseBenchArgs(process.argv.slice(2));
  const scales = options.smoke ? [5, 10] : [50, GOAL_COINS, 2000];
  const history = options.smoke ? 100 : 300;
  // Ticks are the repetitions, after untimed warm-up ticks. 60, not the 20 the goal asks for: the
  // machine's speed drifts within a minute: the medians of 25-tick stretches of one run ranged 41–52 ms.
  const warmupTicks = options.smoke ? 1 : 5;
  const timedTicks = options.smoke ? 2 : Math.max(60, options.repeat);
  const figures: Figure[] = [];
  for (const coins of scales) {
    const started = await startBenchBot({ coins, history, ticks: warmupTicks + timedTicks });
    try {
      await started.bot.ticks(warmupTicks);
      const botCpuBefore = processCpuMs();
      const postgresCpuBefore = postgresCpuMs(started.databaseName);
      const times: number[] = [];
      const written: number[] = [];
      const phases: Record<TickPhase, number[]> = { account: [], fetch: [], decide: [], writeWait: [] };
      for (let i = 0; i < timedTicks; i += 1) {
        const t0 = performance.now();
        const [tick] = await started.bot.ticks(1);
        times.push(performance.now() - t0);
        if (!tick) throw new Error("no tick report");
        if (tick.flushError !== undefined || tick.failed.length > 0) throw new Error(`tick failed: ${tick.flushError ?? tick.failed[0]?.error}`);
        written.push(tick.written);
        for (const phase of TICK_PHASES) phases[phase].push(tick.phasesMs[phase]);
        forgetLogLines(started.bot);
      }
      const botCpu = (processCpuMs() - botCpuBefore) / timedTicks;
      const postgresCpuAfter = postgresCpuMs(started.databaseName);
      const scale = `${coins.toLocaleString("en-US")} coins`;
      const label = `tick, ${scale} × 4 timeframes (flush included)`;
      const tick = timingFigure(`tick.${coins}`, label, times);
      figures.push(coins === GOAL_COINS ? withGoal(tick, `≤ ${TICK_GOAL_MS} ms`, tick.value <= TICK_GOAL_MS) : tick);
      figures.push({ id: `tick.${coins}.cpu.bot`, label: `  bot process CPU per tick, ${scale}`, value: botCpu, unit: "ms" });
      if (postgresCpuBefore !== undefined && postgresCpuAfter !== undefined) {
        const postgresCpu = (postgresCpuAfter - postgresCpuBefore) / timedTicks;
        figures.push({ id: `tick.${coins}.cpu.postgres`, label: `  PostgreSQL CPU per tick (its backends for this database), ${scale}`, value: postgresCpu, unit: "ms" });
        // What the tick's wall time is read against: the machine's speed moves both CPU figures, and this bound with them.
        figures.push({ id: `tick.${coins}.cpu.floor`, label: `  shortest tick this work allows on ${CORES} cores: (bot + PostgreSQL CPU) / ${CORES}, ${scale}`, value: (botCpu + postgresCpu) / CORES, unit: "ms" });
      }
      for (const phase of TICK_PHASES) {
        figures.push({ id: `tick.${coins}.phase.${phase}`, label: `  ${PHASE_LABELS[phase]}, ${scale}`, value: median(phases[phase]), unit: "ms", p95: percentile(phases[phase], 95) });
      }
      figures.push({ id: `tick.${coins}.rowsWritten`, label: `  candles written per tick, ${scale}`, value: median(written), unit: "rows", p95: percentile(written, 95) });
      figures.push({ id: `start.${coins}`, label: `  start-up with ${history} candles of history per series, ${scale}`, value: started.startMs, unit: "ms" });
    } finally {
      await started.stop();
    }
  }
  report(options, {
    name: "tick",
    title: "Bot tick on the simulated exchange (apps/bot)",
    measuredAt: new Date().toISOString(),
    smoke: options.smoke,
    repetitions: timedTicks,
    settings: { timeframes: 4, historyCandles: history, warmupTicks, timedTicks, database: "server", simStepMinutes: 15 },
    figures,
  });
});
