import fs from "node:fs";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { describeError, type Logger } from "@candlekeep/core";
import type { Database, DbOptions } from "./connect";
import { diskSpace, formatBytes, type DiskSpace } from "./disk-space";
import { lockDataDirectory } from "./embedded-lock";
import { DatabaseUnreachableError, DiskFullError, EmbeddedEngineStoppedError, errorCode } from "./errors";
import type { PrismaClient } from "./generated/prisma/client";
import { embeddedPrisma, type LazyPrisma } from "./prisma-client";
import type { SqlRunner } from "./sql";

const MIB = 1024 * 1024;

/**
 * Free space an existing embedded database needs to open and to go on writing:
 * PostgreSQL writes its log (WAL) in 16 MB segments and stops (a PANIC) when it
 * cannot create the next one; replaying the log at the next open needs a new
 * one too (measured: reopening after such a stop worked with 17 MB free, not
 * with 12 MB). Two segments' worth leaves room for the tables as well.
 */
export const EMBEDDED_MIN_FREE_BYTES = 32 * MIB;
/** A new embedded database: initdb and the migrations write ~40 MB. */
export const EMBEDDED_MIN_FREE_NEW_BYTES = 64 * MIB;
/** After the engine could not be opened again, the next attempt waits this long (a failed open costs a WebAssembly instance). */
const REOPEN_RETRY_MS = 5_000;
/** How often the engine checkpoints (PostgreSQL's checkpoint_timeout default; see EmbeddedEngine). */
export const EMBEDDED_CHECKPOINT_INTERVAL_MS = 5 * 60_000;
/**
 * WAL kept for reuse after a checkpoint (PostgreSQL's default is 1 GB): the log
 * stays within a few segments, which a full disk then still has to write into.
 */
const WAL_SETTINGS = ["-c", "max_wal_size=64MB", "-c", "min_wal_size=32MB"];

/** One PGlite instance and what hangs on it. */
interface Engine {
  pglite: PGlite;
  prisma: LazyPrisma;
  /** Set by the abort hook (see stopOnAbort): the engine must never be entered again. */
  stopped: boolean;
  /** Counts the opens: a session pinned to one engine fails on the next (its transaction is gone). */
  generation: number;
}

/** The engine closed after it stopped, until it is opened again. */
interface Down {
  error: Error;
  /** Resolves once the stopped engine is closed (its files released). */
  closed: Promise<void>;
  /** No open is attempted before this time (epoch ms). */
  retryAt: number;
}

/**
 * The embedded engine of one data directory. PGlite runs PostgreSQL in
 * WebAssembly on this thread; when PostgreSQL stops on a fatal error (a PANIC:
 * most often a full disk where it must create a WAL segment), the instance is
 * closed and every call fails at once, without entering it, until it is opened
 * again: at the first call after enough space is free again (the log replay
 * restores every committed write). Ordinary write errors on a full disk
 * (PostgreSQL's disk_full, the engine intact) become a DiskFullError saying how
 * much is free and where.
 *
 * PGlite runs PostgreSQL in single-user mode, which never checkpoints by
 * itself: the WAL grows without end while the process runs (16 MB segment after
 * 16 MB segment, 65 KB/s with 3 coins ticking every 100 ms), and a crash replays
 * all of it. Here it checkpoints every EMBEDDED_CHECKPOINT_INTERVAL_MS, and
 * keeps at most 64 MB of old segments for reuse; the next segments are then
 * ready before they are needed, so a full disk does not stop the engine at the
 * next segment switch.
 */
export class EmbeddedEngine {
  private current: Engine;
  private down: Down | undefined;
  private reopening: Promise<Engine> | undefined;
  private closing = false;
  private readonly checkpoints: NodeJS.Timeout;

  private constructor(
    readonly dir: string,
    private readonly logger: Logger,
    first: Engine,
    checkpointIntervalMs: number,
  ) {
    this.current = first;
    this.checkpoints = setInterval(() => void this.checkpoint(), checkpointIntervalMs);
    this.checkpoints.unref();
  }

  /** Opens the engine on `dir` (created when new); throws DiskFullError when the disk has too little room. */
  static async open(dir: string, logger: Logger, options: { checkpointIntervalMs?: number } = {}): Promise<EmbeddedEngine> {
    return new EmbeddedEngine(dir, logger, await startEngine(dir, 1), options.checkpointIntervalMs ?? EMBEDDED_CHECKPOINT_INTERVAL_MS);
  }

  get generation(): number {
    return this.current.generation;
  }

  /** Prisma's client on the current engine (one made on first use per engine). */
  get prisma(): PrismaClient {
    return this.current.prisma.get();
  }

  /**
   * Runs `fn` on the engine, opening it again first if it had stopped.
   * `generation`: the engine a session began on; if it has been replaced since,
   * the call fails (the session's transaction did not survive the stop).
   */
  async run<T>(fn: (pglite: PGlite) => Promise<T>, generation?: number): Promise<T> {
    const engine = this.down || this.reopening ? await this.ready() : this.current;
    if (generation !== undefined && engine.generation !== generation) {
      throw new EmbeddedEngineStoppedError("The embedded engine was opened again after it stopped; this session's transaction was lost with it (retry it).");
    }
    let result: T;
    try {
      result = await fn(engine.pglite);
    } catch (error) {
      if (engine.stopped) throw this.stopped(engine);
      if (isDiskFull(error)) throw new DiskFullError(this.diskFullMessage(error));
      throw error;
    }
    // PGlite may end a call that met a stop as if it went well (see stopOnAbort).
    if (engine.stopped) throw this.stopped(engine);
    return result;
  }

  /** A checkpoint, unless the engine is stopped; a failure (a full disk) is left to the writes to report. */
  private async checkpoint(): Promise<void> {
    if (this.down || this.closing) return;
    await this.run(async (pglite) => {
      await pglite.exec("CHECKPOINT");
    }).catch((error: unknown) => this.logger.debug("embedded engine checkpoint failed", { error: describeError(error) }));
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.checkpoints);
    await this.reopening?.catch(() => undefined);
    if (this.down) return this.down.closed;
    const { prisma, pglite } = this.current;
    await prisma.disconnect();
    await pglite.close();
  }

  /** The engine stopped during a call: closes it (once) and returns the error every caller gets until it is opened again. */
  private stopped(engine: Engine): Error {
    if (this.down) return this.down.error;
    if (engine !== this.current) return new EmbeddedEngineStoppedError("The embedded engine stopped on a fatal error and was opened again; retry.");
    const space = diskSpace(this.dir);
    const error = new EmbeddedEngineStoppedError(
      `The embedded engine stopped on a fatal error (PostgreSQL panicked; on a full disk it cannot create its next WAL segment). ${spaceSentence(this.dir, space)} It was closed and opens again, replaying its log, once ${formatBytes(EMBEDDED_MIN_FREE_BYTES)} are free.`,
    );
    // The abort hook made every entry point a no-op: closing cannot enter the broken engine.
    const closed = engine.pglite.close().catch(() => undefined);
    this.down = { error, closed, retryAt: 0 };
    this.logger.error("embedded engine stopped on a fatal error; closed, it opens again once there is room", {
      dataDir: this.dir,
      ...(space ? { free: formatBytes(space.freeBytes), mountPoint: space.mountPoint } : {}),
      needed: formatBytes(EMBEDDED_MIN_FREE_BYTES),
    });
    return error;
  }

  private ready(): Promise<Engine> {
    if (this.reopening) return this.reopening;
    const down = this.down;
    if (!down) return Promise.resolve(this.current);
    if (this.closing) return Promise.reject(down.error);
    if (Date.now() < down.retryAt) return Promise.reject(down.error);
    const space = diskSpace(this.dir);
    if (space && space.freeBytes < EMBEDDED_MIN_FREE_BYTES) {
      // Checked before each attempt: an open on a full disk fails, and costs a WebAssembly instance each time.
      down.error = new DiskFullError(notEnoughSpaceMessage(this.dir, space, EMBEDDED_MIN_FREE_BYTES, "open it again after it stopped"));
      return Promise.reject(down.error);
    }
    this.reopening = this.reopen(down).finally(() => {
      this.reopening = undefined;
    });
    return this.reopening;
  }

  private async reopen(down: Down): Promise<Engine> {
    await down.closed;
    try {
      const engine = await startEngine(this.dir, this.current.generation + 1);
      this.current = engine;
      this.down = undefined;
      const space = diskSpace(this.dir);
      this.logger.info("embedded engine opened again after it stopped", { dataDir: this.dir, ...(space ? { free: formatBytes(space.freeBytes) } : {}) });
      return engine;
    } catch (error) {
      down.retryAt = Date.now() + REOPEN_RETRY_MS;
      down.error = error instanceof DiskFullError ? error : new EmbeddedEngineStoppedError(`The embedded engine stopped and could not be opened again: ${describeError(error)}`);
      throw down.error;
    }
  }

  private diskFullMessage(error: unknown): string {
    return `No space left for the embedded database. ${spaceSentence(this.dir, diskSpace(this.dir))} Free space there (the engine needs ${formatBytes(EMBEDDED_MIN_FREE_BYTES)} to go on writing), or move CANDLEKEEP_DATA_DIR to a larger disk. (${describeError(error)})`;
  }
}

/** PostgreSQL's disk_full, or the file system's ENOSPC as PostgreSQL words it. */
function isDiskFull(error: unknown): boolean {
  return errorCode(error) === "53100" || /No space left on device/i.test(describeError(error));
}

function spaceSentence(dir: string, space: DiskSpace | undefined): string {
  return space ? `The disk holding ${dir} (mounted at ${space.mountPoint}) has ${formatBytes(space.freeBytes)} free.` : `The free space of the disk holding ${dir} is unknown.`;
}

function notEnoughSpaceMessage(dir: string, space: DiskSpace, needed: number, purpose: string): string {
  return (
    `The disk holding the embedded database (${dir}) has ${formatBytes(space.freeBytes)} free; the embedded engine needs ${formatBytes(needed)} to ${purpose}. ` +
    `Free ${formatBytes(needed - space.freeBytes)} or more on ${space.mountPoint}, or set CANDLEKEEP_DATA_DIR to a directory on a larger disk.`
  );
}

/**
 * Opens PGlite on `dir` when the disk has room for it, with the abort hook in place.
 * A failure on a disk that has too little room is a DiskFullError.
 */
async function startEngine(dir: string, generation: number): Promise<Engine> {
  const isNew = !fs.existsSync(path.join(dir, "PG_VERSION"));
  const needed = isNew ? EMBEDDED_MIN_FREE_NEW_BYTES : EMBEDDED_MIN_FREE_BYTES;
  const purpose = isNew ? "create it" : "open it";
  const space = diskSpace(dir);
  if (space && space.freeBytes < needed) throw new DiskFullError(notEnoughSpaceMessage(dir, space, needed, purpose));
  let pglite: PGlite;
  try {
    // Required here, not imported above: its ~25 ms of module loading is spent only by those who use it,
    // not by every bot and verify run against a server.
    const { PGlite: Engine } = require("@electric-sql/pglite") as typeof import("@electric-sql/pglite");
    pglite = await Engine.create(dir, { startParams: [...Engine.defaultStartParams, ...WAL_SETTINGS] });
  } catch (error) {
    const after = diskSpace(dir);
    if (after && after.freeBytes < needed) throw new DiskFullError(notEnoughSpaceMessage(dir, after, needed, purpose));
    throw error;
  }
  const engine: Engine = { pglite, prisma: embeddedPrisma(pglite), stopped: false, generation };
  stopOnAbort(pglite, () => {
    engine.stopped = true;
  });
  return engine;
}

/** PGlite's status for "PostgreSQL longjmp'd out of its main loop" (a private constant of PGlite 0.5). */
const POSTGRES_MAIN_LONGJMP = 100;

/**
 * Makes a PostgreSQL PANIC end the call that met it instead of hanging the process.
 *
 * PostgreSQL answers a PANIC by calling abort(). Emscripten's abort() throws, and
 * PGlite 0.5's message loop (execProtocolRawSync) catches every exception of an
 * iteration and runs the next one: the aborted engine goes on, and the commit
 * that panicked (in XLogFlush, say, when the next WAL segment cannot be created
 * on a full disk) loops for ever at 100 % CPU. The loop is synchronous
 * WebAssembly on the main thread, so nothing else runs again: no timers, no
 * /healthz, no signal handlers (SIGTERM is ignored). Seen on a full tmpfs:
 * "PANIC: could not write to file "pg_wal/xlogtemp.N": No space left on device",
 * then "WARNING: CommitTransaction while in COMMIT state" and the endless loop.
 *
 * Emscripten calls Module.onAbort before it marks the module aborted (which
 * keeps its timers from calling into it again: PostgreSQL leaves a 10 s timer
 * behind) and throws. Here that marks the engine stopped and replaces the
 * module's entry points that PGlite calls: the loop's next iteration throws
 * PGlite's own longjmp status, whose handler (replaced too) throws an error
 * that leaves the loop; the calls PGlite makes after the loop and when it is
 * closed (ready-for-query, flush, atexit, exit) do nothing. When the message
 * that panicked was the call's last, the loop ends and PGlite returns what was
 * answered before the panic as if all went well: EmbeddedEngine.run fails any
 * call that ends with the engine stopped, however it ended. The aborted engine
 * is never entered again; EmbeddedEngine closes it (releasing its files) and
 * opens a new one, whose log replay restores what was committed.
 */
function stopOnAbort(pglite: PGlite, onStop: () => void): void {
  const mod = pglite.Module;
  const leaveLoop = () => {
    throw new EmbeddedEngineStoppedError("The embedded engine stopped on a fatal error.");
  };
  const longjmp = () => {
    throw Object.assign(new EmbeddedEngineStoppedError("The embedded engine stopped on a fatal error."), { status: POSTGRES_MAIN_LONGJMP });
  };
  mod.onAbort = () => {
    onStop();
    mod._PostgresMainLoopOnce = longjmp;
    mod._PostgresMainLongJmp = leaveLoop;
    mod._PostgresSendReadyForQueryIfNecessary = () => undefined;
    mod._pgl_pq_flush = () => undefined;
    mod._pq_buffer_remaining_data = () => 0;
    mod._IsTransactionBlock = () => 0;
    mod._pgl_setPGliteActive = () => 0;
    mod._pgl_run_atexit_funcs = () => undefined;
    mod._emscripten_force_exit = () => undefined;
  };
}

class PgliteRunner implements SqlRunner {
  constructor(
    private readonly engine: EmbeddedEngine,
    /** Set for a session: its statements fail once the engine has been replaced. */
    private readonly generation?: number,
  ) {}
  query<Row extends object>(text: string, params?: readonly unknown[]) {
    return this.engine.run(async (pglite) => {
      const result = await pglite.query<Row>(text, params ? [...params] : undefined);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    }, this.generation);
  }
  exec(text: string) {
    return this.engine.run(async (pglite) => {
      await pglite.exec(text);
    }, this.generation);
  }
}

/** `close` may be called again (a test's afterAll, a second shutdown signal): later calls share the first. */
function once(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}

/** The embedded database in `<dataDir>/pgdata`, locked to this process while it is open. */
export async function openEmbedded(options: DbOptions): Promise<Database> {
  const dir = path.resolve(options.dataDir, "pgdata");
  fs.mkdirSync(dir, { recursive: true });
  const unlock = lockDataDirectory(`${dir}.lock`, dir);
  let engine: EmbeddedEngine;
  try {
    engine = await EmbeddedEngine.open(dir, options.logger);
  } catch (error) {
    unlock();
    if (error instanceof DiskFullError) throw error;
    throw new DatabaseUnreachableError(
      `Cannot open the embedded database in ${dir}: ${describeError(error)}. Check that the directory is writable and not used by another running bot, or set CANDLEKEEP_DATA_DIR to another directory.`,
    );
  }
  const runner = new PgliteRunner(engine);
  return {
    kind: "embedded",
    target: `embedded database in ${dir}`,
    logger: options.logger,
    get prisma() {
      return engine.prisma;
    },
    sql: runner,
    pool: undefined,
    // One connection only: the engine serialises statements itself. A session stays on the engine it began on.
    session: (fn) => fn(new PgliteRunner(engine, engine.generation)),
    close: once(async () => {
      try {
        await engine.close();
      } finally {
        unlock();
      }
    }),
  };
}
