import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "@candlekeep/core";
import { openDatabase } from "./connect";
import { DatabaseUnreachableError } from "./errors";

describe("embedded database lock", () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-lock-"));
  });
  afterEach(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const open = () => openDatabase({ dataDir, autoMigrate: true, logger: silentLogger });

  it("refuses a second open of the same data directory while the first is open, and allows it after close", async () => {
    const first = await open();
    try {
      await expect(open()).rejects.toThrow(DatabaseUnreachableError);
      await expect(open()).rejects.toThrow(/is in use by this process already.*one process at a time/);
    } finally {
      await first.close();
    }
    const again = await open();
    await again.close();
  });

  it("names another running process that holds the lock", async () => {
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      fs.mkdirSync(path.join(dataDir, "pgdata"), { recursive: true });
      fs.writeFileSync(path.join(dataDir, "pgdata.lock"), String(holder.pid));
      await expect(open()).rejects.toThrow(`another process (pid ${holder.pid})`);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("takes over a lock left by a process that no longer runs (a crash)", async () => {
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => gone.on("exit", resolve));
    writeLock(String(gone.pid));
    const db = await open();
    expect(JSON.parse(fs.readFileSync(lockPath(), "utf8"))).toMatchObject({ pid: process.pid, startTicks: startTicksOf(process.pid) });
    await db.close();
    expect(fs.existsSync(lockPath())).toBe(false);
  });

  it("refuses a lock whose owner still runs: its pid and start time match", async () => {
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      await waitForStat(holder.pid ?? 0);
      writeLock(JSON.stringify({ pid: holder.pid, startTicks: startTicksOf(holder.pid ?? 0), bootId: bootId() }));
      await expect(open()).rejects.toThrow(`another process (pid ${holder.pid})`);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  // After a crash the pid is reused: by any process, or in a container by the restarted bot itself as pid 1.
  it.each([
    ["pid 1 (not the bot that wrote it)", 1],
    ["the test runner's own pid", process.pid],
  ])("takes over a stale lock whose pid now belongs to another live process: %s", async (_name, pid) => {
    writeLock(JSON.stringify({ pid, startTicks: startTicksOf(pid) - 1, bootId: bootId() }));
    const db = await open();
    expect(JSON.parse(fs.readFileSync(lockPath(), "utf8"))).toMatchObject({ pid: process.pid });
    await db.close();
  });

  it("takes over a stale lock of an older version (pid only) that names a live process other than a node one", async () => {
    expect(fs.readFileSync("/proc/1/comm", "utf8").trim()).not.toBe("node");
    writeLock("1");
    const db = await open();
    await db.close();
  });

  it("takes over a stale lock written in an earlier boot", async () => {
    writeLock(JSON.stringify({ pid: process.pid, startTicks: startTicksOf(process.pid), bootId: "an-earlier-boot" }));
    const db = await open();
    await db.close();
  });

  const lockPath = () => path.join(dataDir, "pgdata.lock");
  function writeLock(content: string): void {
    fs.mkdirSync(path.join(dataDir, "pgdata"), { recursive: true });
    fs.writeFileSync(lockPath(), content);
  }
});

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks after boot. */
function startTicksOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
}

function bootId(): string {
  return fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
}

async function waitForStat(pid: number): Promise<void> {
  while (!fs.existsSync(`/proc/${pid}/stat`)) await new Promise((resolve) => setTimeout(resolve, 10));
}
