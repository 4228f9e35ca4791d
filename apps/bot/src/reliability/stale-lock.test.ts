import fs from "node:fs";
import path from "node:path";
import { createEmbeddedTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { runBotToExit, spawnBot } from "../testing/process";

/**
 * Reliability: the embedded database's lock file outlives a bot killed with
 * SIGKILL, and its pid is then reused: by pid 1 when a container restarts, by
 * any process otherwise. The lock names its owner's start time too, so such a
 * stale lock does not keep the next bot from starting; a live bot's lock does.
 */

const SETTINGS = { SYMBOLS: "BTC/USDT,ETH/USDT" };

describe("a stale embedded-database lock whose pid now belongs to a live process (real bot processes)", () => {
  let testDb: TestDatabase;
  const lockPath = () => path.join(testDb.dataDir, "pgdata.lock");
  const env = () => ({ CANDLEKEEP_DATA_DIR: testDb.dataDir, ...SETTINGS });

  beforeEach(() => {
    testDb = createEmbeddedTestDatabase();
  });
  afterEach(async () => {
    await testDb.drop();
  });

  it("a bot killed with SIGKILL leaves its lock; with its pid reused by pid 1 or by the test runner, the next bot starts, while a running bot's lock still stops a second one", async () => {
    const killed = spawnBot(env());
    await killed.waitForTick(2);
    await killed.kill();
    const left: Record<string, unknown> = JSON.parse(fs.readFileSync(lockPath(), "utf8"));
    expect(left).toMatchObject({ pid: killed.child.pid, startTicks: expect.any(Number) });

    for (const pid of [1, process.pid]) {
      fs.writeFileSync(lockPath(), JSON.stringify({ ...left, pid }));
      const run = await runBotToExit(env());
      expect({ pid, code: run.code, errors: run.errors }).toEqual({ pid, code: 0, errors: [] });
    }

    const running = spawnBot(env());
    try {
      await running.waitForTick(1);
      const second = await runBotToExit(env());
      expect(second.code).toBe(1);
      expect(second.errors).toEqual([expect.stringContaining(`is in use by another process (pid ${running.child.pid})`)]);
    } finally {
      await running.kill();
    }
  }, 120_000);

  it("a lock of an older version (the pid only) naming pid 1, not a node process, does not stop the bot", async () => {
    fs.writeFileSync(lockPath(), "1");
    const run = await runBotToExit(env());
    expect(run.code).toBe(0);
    expect(run.errors).toEqual([]);
  }, 60_000);
});
