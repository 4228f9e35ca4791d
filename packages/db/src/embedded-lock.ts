import fs from "node:fs";
import path from "node:path";
import { DatabaseUnreachableError, errorCode } from "./errors";

/**
 * The embedded engine's files may be opened by one process at a time: two
 * processes writing the same data directory corrupt it. A lock file names the
 * owner: its pid, and (on Linux) when that process started and the boot it
 * started in. A lock whose owner no longer runs is stale and taken over.
 *
 * A pid alone is not enough: after a crash (kill -9) its number is reused, by
 * any process, or, in a container, by the restarted bot itself as pid 1. So
 * a running process owns the lock only if it started when the lock says; a
 * lock written before start times were recorded (the pid only) is owned only
 * by a running node process that started before the lock was written. Where
 * /proc cannot tell (not Linux), a running pid owns the lock.
 */
export function lockDataDirectory(lockPath: string, databaseDir: string): () => void {
  const self = processIdentity(process.pid);
  const mine: LockOwner = { pid: process.pid, startTicks: self?.startTicks, bootId: self?.bootId };
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      fs.writeFileSync(lockPath, `${JSON.stringify(mine)}\n`, { flag: "wx" });
      return () => {
        // Only remove our own lock (a taken-over stale one may belong to someone else now).
        const owner = readOwner(lockPath);
        if (owner && sameOwner(owner, mine)) fs.rmSync(lockPath, { force: true });
      };
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
      const owner = readOwner(lockPath);
      if (owner !== undefined && ownsLock(owner)) {
        throw new DatabaseUnreachableError(
          `The embedded database in ${databaseDir} is in use by ${sameOwner(owner, mine) ? "this process already" : `another process (pid ${owner.pid})`}. ` +
            "Stop it first (the embedded engine allows one process at a time), or set DATABASE_URL to a PostgreSQL server to run several.",
        );
      }
      fs.rmSync(lockPath, { force: true }); // stale: its owner is gone
    }
  }
  throw new DatabaseUnreachableError(`Cannot lock the embedded database in ${databaseDir} (${lockPath}); remove the file if no bot is running.`);
}

/** Who wrote a lock file; startTicks and bootId are missing in a lock of an older version (or off Linux). */
interface LockOwner {
  pid: number;
  /** The owner's start time in clock ticks after boot (field 22 of /proc/<pid>/stat). */
  startTicks: number | undefined;
  bootId: string | undefined;
  /** When the lock file was written (epoch ms), for a lock that names the pid only. */
  writtenAt?: number;
}

function sameOwner(a: LockOwner, b: LockOwner): boolean {
  return a.pid === b.pid && a.startTicks === b.startTicks && a.bootId === b.bootId;
}

function readOwner(lockPath: string): LockOwner | undefined {
  let text: string;
  let writtenAt: number;
  try {
    text = fs.readFileSync(lockPath, "utf8").trim();
    writtenAt = fs.statSync(lockPath).mtimeMs;
  } catch {
    return undefined;
  }
  if (/^\d+$/.test(text)) return validPid(Number(text)) ? { pid: Number(text), startTicks: undefined, bootId: undefined, writtenAt } : undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const pid: unknown = Reflect.get(value, "pid");
    const startTicks: unknown = Reflect.get(value, "startTicks");
    const bootId: unknown = Reflect.get(value, "bootId");
    if (typeof pid !== "number" || !validPid(pid)) return undefined;
    return { pid, startTicks: typeof startTicks === "number" ? startTicks : undefined, bootId: typeof bootId === "string" ? bootId : undefined, writtenAt };
  } catch {
    return undefined;
  }
}

function validPid(pid: number): boolean {
  return Number.isInteger(pid) && pid > 0;
}

/** Whether the process the lock names is the one that wrote it, and still runs. */
function ownsLock(owner: LockOwner): boolean {
  if (!isRunning(owner.pid)) return false;
  const running = processIdentity(owner.pid);
  if (running === undefined) return true; // no /proc: a running pid is all there is to go on
  if (owner.startTicks !== undefined) return running.startTicks === owner.startTicks && (owner.bootId === undefined || owner.bootId === running.bootId);
  // A lock of an older version names the pid only: its owner was a node process running when it was written.
  return running.command === "node" && (owner.writtenAt === undefined || running.startedAt <= owner.writtenAt + 1000);
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

/** Linux reports process start times in these units (USER_HZ, fixed at 100 by the kernel's ABI). */
const CLOCK_TICKS_PER_SECOND = 100;

interface ProcessIdentity {
  startTicks: number;
  bootId: string | undefined;
  /** The program it runs (its executable's file name, else /proc/<pid>/comm), e.g. "node". */
  command: string;
  /** Its start time, epoch ms. */
  startedAt: number;
}

/** When `pid` started (and in which boot), from /proc; undefined where there is no /proc or the process is gone. */
function processIdentity(pid: number): ProcessIdentity | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so fields are counted from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const startTicks = Number(fields[19]); // field 22 of the whole line
    if (!Number.isFinite(startTicks)) return undefined;
    const bootTime = /^btime (\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"))?.[1];
    return {
      startTicks,
      bootId: readTrimmed("/proc/sys/kernel/random/boot_id"),
      command: executableName(pid) ?? readTrimmed(`/proc/${pid}/comm`) ?? "",
      startedAt: Number(bootTime ?? 0) * 1000 + (startTicks / CLOCK_TICKS_PER_SECOND) * 1000,
    };
  } catch {
    return undefined;
  }
}

/**
 * The file name of the program `pid` runs (/proc/<pid>/exe), e.g. "node". Not its comm: Node.js 24 names
 * its main thread "MainThread", which is what comm shows. Undefined when the link cannot be read
 * (another user's process).
 */
function executableName(pid: number): string | undefined {
  try {
    return path.basename(fs.readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return undefined;
  }
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}
