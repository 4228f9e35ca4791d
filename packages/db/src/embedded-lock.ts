import fs from "node:fs";
import { DatabaseUnreachableError, errorCode } from "./errors";

/**
 * The embedded engine's files may be opened by one process at a time: two
 * processes writing the same data directory corrupt it. A lock file holding
 * the owner's pid enforces that; one left behind by a crashed process (its pid
 * no longer running) is taken over.
 */
export function lockDataDirectory(lockPath: string, databaseDir: string): () => void {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: "wx" });
      return () => {
        // Only remove our own lock (a taken-over stale one may belong to someone else now).
        if (readOwner(lockPath) === process.pid) fs.rmSync(lockPath, { force: true });
      };
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
      const owner = readOwner(lockPath);
      if (owner !== undefined && isRunning(owner)) {
        throw new DatabaseUnreachableError(
          `The embedded database in ${databaseDir} is in use by ${owner === process.pid ? "this process already" : `another process (pid ${owner})`}. ` +
            "Stop it first (the embedded engine allows one process at a time), or set DATABASE_URL to a PostgreSQL server to run several.",
        );
      }
      fs.rmSync(lockPath, { force: true }); // stale: its owner is gone
    }
  }
  throw new DatabaseUnreachableError(`Cannot lock the embedded database in ${databaseDir} (${lockPath}); remove the file if no bot is running.`);
}

function readOwner(lockPath: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(lockPath, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return errorCode(error) === "EPERM";
  }
}
