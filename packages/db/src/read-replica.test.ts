import { z } from "zod";
import { silentLogger } from "@candlekeep/core";
import { openDatabase, type Database } from "./connect";
import { DatabaseUnreachableError } from "./errors";
import { replicaState } from "./inspect";
import { readReplicaProblem, readReplicaSettings } from "./read-replica";
import {
  DATABASE_KINDS,
  NO_RETRY,
  openOnTestDatabase,
  openTestDatabase,
  rejection,
  startPrivateServer,
  startStandby,
  until,
  type PrivateServer,
  type Standby,
  type TestDatabase,
} from "./testing";

const schema = z.object(readReplicaSettings);
const problemsOf = (env: Record<string, string>) => {
  const result = schema.safeParse(env);
  return result.success ? [] : result.error.issues.map((issue) => issue.message);
};

describe("DATABASE_READ_URL's validation", () => {
  it("accepts a PostgreSQL URL and refuses a malformed one in the URL validator's words, naming DATABASE_READ_URL and never the password", () => {
    expect(problemsOf({ DATABASE_READ_URL: "postgresql://reader:pw@replica.example.com:25060/candlekeep?sslmode=require" })).toEqual([]);
    expect(problemsOf({})).toEqual([]);
    const found = problemsOf({ DATABASE_READ_URL: "mysql://reader:Sw0rdf1sh@replica/candlekeep" });
    expect(found).toEqual(['Invalid DATABASE_READ_URL: scheme "mysql://" is not PostgreSQL; use postgresql:// or postgres:// (expected postgresql://user:password@host:5432/dbname).']);
    expect(found.join("")).not.toContain("Sw0rdf1sh");
  });

  it("names one of only spaces, and one set without DATABASE_URL", () => {
    expect(problemsOf({ DATABASE_READ_URL: " " })).toEqual([
      "DATABASE_READ_URL is blank (only spaces); unset it to read from DATABASE_URL, or set it to the read replica's postgresql://user:password@host:5432/dbname",
    ]);
    expect(readReplicaProblem({ DATABASE_URL: undefined, DATABASE_READ_URL: "postgresql://reader@replica/candlekeep" })).toMatch(/^DATABASE_READ_URL is set but DATABASE_URL is not/);
    expect(readReplicaProblem({ DATABASE_URL: "postgresql://bot@db/candlekeep", DATABASE_READ_URL: "postgresql://reader@replica/candlekeep" })).toBeUndefined();
    expect(readReplicaProblem({ DATABASE_URL: undefined, DATABASE_READ_URL: undefined })).toBeUndefined();
  });

  it("names DATABASE_READ_URL, not DATABASE_URL, when the replica's database cannot be opened", async () => {
    const error = await rejection(
      openDatabase({ databaseUrl: "postgresql://postgres:Sw0rdf1sh@127.0.0.1:5432/candlekeep_no_such_replica", databaseUrlSetting: "DATABASE_READ_URL", dataDir: "unused", autoMigrate: false, logger: silentLogger, retry: NO_RETRY }),
    );
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect(error.message).toBe('Database "candlekeep_no_such_replica" does not exist on 127.0.0.1:5432. Create it (CREATE DATABASE "candlekeep_no_such_replica") or fix the name in DATABASE_READ_URL.');
  });
});

describe.each(DATABASE_KINDS)("replicaState on a database that is no standby (%s engine)", (kind) => {
  it("says it is none, with no lag", async () => {
    const db = await openTestDatabase(kind);
    try {
      expect(await replicaState(db)).toEqual({ standby: false, replayLagMs: undefined });
    } finally {
      await db.close();
    }
  });
});

describe("replicaState on a streaming hot standby", () => {
  let primary: PrivateServer;
  let standby: Standby;
  let testDb: TestDatabase;
  let writer: Database;
  let reader: Database;

  beforeAll(async () => {
    primary = startPrivateServer({});
    standby = startStandby(primary);
    // Created after the standby started: the database, its migrations and its rows all reach it through replication.
    testDb = await primary.createDatabase();
    writer = await openOnTestDatabase(testDb);
    reader = await until("the migrated database on the standby", () => openDatabase({ databaseUrl: standby.urlOf(testDb), dataDir: testDb.dataDir, autoMigrate: false, logger: silentLogger, retry: NO_RETRY }).catch(() => undefined), 20_000);
  }, 60_000);
  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    await testDb?.drop();
    standby?.stop();
    primary?.stop();
  });

  const insertEvent = (type: string) => writer.sql.query("INSERT INTO system_events (type) VALUES ($1)", [type]);
  const eventsOnStandby = async (type: string) => Number((await reader.sql.query<{ n: string }>("SELECT count(*) AS n FROM system_events WHERE type = $1", [type])).rows[0]?.n);

  it("is a standby, caught up once it has replayed the primary's writes", async () => {
    await insertEvent("REPLICATED");
    await until("the row on the standby", async () => ((await eventsOnStandby("REPLICATED")) === 1 ? true : undefined), 10_000);
    expect(await until("the standby caught up", async () => ((await replicaState(reader)).replayLagMs === 0 ? replicaState(reader) : undefined), 10_000)).toEqual({ standby: true, replayLagMs: 0 });
  });

  it("is behind, by the age of its newest replayed transaction, while it receives writes it has not replayed", async () => {
    await reader.sql.query("SELECT pg_wal_replay_pause()");
    try {
      await insertEvent("HELD_BACK");
      const lagging = await until("the write received but not replayed", async () => {
        const state = await replicaState(reader);
        return state.replayLagMs !== undefined && state.replayLagMs > 0 ? state : undefined;
      }, 10_000);
      expect(lagging.standby).toBe(true);
      expect(await eventsOnStandby("HELD_BACK")).toBe(0);
    } finally {
      await reader.sql.query("SELECT pg_wal_replay_resume()");
    }
    await until("the held-back row on the standby", async () => ((await eventsOnStandby("HELD_BACK")) === 1 ? true : undefined), 10_000);
    expect(await until("the standby caught up again", async () => ((await replicaState(reader)).replayLagMs === 0 ? true : undefined), 10_000)).toBe(true);
  });
});
