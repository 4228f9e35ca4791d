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
    fs.mkdirSync(path.join(dataDir, "pgdata"), { recursive: true });
    fs.writeFileSync(path.join(dataDir, "pgdata.lock"), String(gone.pid));
    const db = await open();
    expect(fs.readFileSync(path.join(dataDir, "pgdata.lock"), "utf8")).toBe(String(process.pid));
    await db.close();
    expect(fs.existsSync(path.join(dataDir, "pgdata.lock"))).toBe(false);
  });
});
