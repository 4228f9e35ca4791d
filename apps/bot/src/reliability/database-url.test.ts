import { silentLogger } from "@candlekeep/core";
import { openDatabase } from "@candlekeep/db";
import { createServerTestDatabase, TEST_ADMIN_URL, TEST_SOCKET_DIR, type TestDatabase } from "@candlekeep/db/testing";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PasswordRejectingServer } from "../testing/fake-postgres";
import { runBotToExit } from "../testing/process";

/**
 * Reliability, bad input 6: DATABASE_URL variants given to the real bot
 * process. Each gives one clear line and a non-zero exit code (2: the URL
 * itself is wrong; 1: the server refused it), and never shows the password.
 *
 * An empty DATABASE_URL means unset (deploy dashboards create empty variables):
 * the bot says so and uses the embedded database. Whitespace only is an error.
 */

// Password fragments that must never appear in any output.
const SECRET_A = "Qz7v";
const SECRET_B = "Kw9x";

function expectNoSecret(output: string): void {
  expect(output).not.toContain(SECRET_A);
  expect(output).not.toContain(SECRET_B);
}

describe("DATABASE_URL variants at start-up (real bot process)", () => {
  const ENCODING_HINT = "percent-encode special characters in the user or password";

  it.each([
    ["whitespace only", "   ", /^ {2}- DATABASE_URL is blank \(only spaces\); leave it empty or unset for the embedded database/],
    ["mysql:// scheme", `mysql://bot:${SECRET_A}${SECRET_B}@127.0.0.1:3306/candlekeep`, /^ {2}- Invalid DATABASE_URL: scheme "mysql:\/\/" is not PostgreSQL/],
    ["http:// scheme", `http://bot:${SECRET_A}${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: scheme "http:\/\/" is not PostgreSQL/],
    ["no scheme", `bot:${SECRET_A}${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: it must start with postgresql:\/\/ or postgres:\/\//],
    ["missing host", `postgresql://bot:${SECRET_A}${SECRET_B}@/candlekeep`, /^ {2}- Invalid DATABASE_URL: it has no host/],
    ["host forgotten (user:password read as host:port)", `postgresql://bot:${SECRET_A}${SECRET_B}/candlekeep`, /^ {2}- Invalid DATABASE_URL: the text after ':' is not a port number; if it is user:password, the host is missing/],
    ["non-numeric port", `postgresql://bot:${SECRET_A}${SECRET_B}@127.0.0.1:five/candlekeep`, /^ {2}- Invalid DATABASE_URL: port "five" is not a number/],
    ["out-of-range port", `postgresql://bot:${SECRET_A}${SECRET_B}@127.0.0.1:70000/candlekeep`, /^ {2}- Invalid DATABASE_URL: port 70000 is out of range/],
    ["no database name", `postgresql://bot:${SECRET_A}${SECRET_B}@127.0.0.1:5432`, /^ {2}- Invalid DATABASE_URL: it names no database/],
    ["unencoded @ in the password", `postgresql://bot:${SECRET_A}@${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: the password contains an unencoded '@'/],
    ["unencoded : in the password", `postgresql://bot:${SECRET_A}:${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: the password contains an unencoded ':'/],
    ["unencoded / in the password", `postgresql://bot:${SECRET_A}/${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: the password contains an unencoded '\/'/],
    ["unencoded # in the password", `postgresql://bot:${SECRET_A}#${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: the password contains an unencoded '#'/],
    ["unencoded ? in the password", `postgresql://bot:${SECRET_A}?${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: the password contains an unencoded '\?'/],
    ["a schema other than public", `postgresql://bot:${SECRET_A}${SECRET_B}@127.0.0.1/candlekeep?schema=trading`, /^ {2}- Invalid DATABASE_URL: schema "trading" is not supported: Candlekeep keeps its tables in the public schema/],
    ["malformed percent-escape in the password", `postgresql://bot:${SECRET_A}%zz${SECRET_B}@127.0.0.1/candlekeep`, /^ {2}- Invalid DATABASE_URL: the password has a malformed percent-escape/],
  ])("%s: one clear line, exit code 2, password never shown", async (_name, url, expected) => {
    const result = await runBotToExit({ DATABASE_URL: url });
    expect(result.code).toBe(2);
    expect(result.output).toContain("Invalid configuration:");
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatch(expected);
    if (/unencoded|percent-escape/.test(String(expected))) expect(result.problems[0]).toContain(ENCODING_HINT);
    expect(result.output).not.toMatch(/\n\s+at /); // no stack trace
    expectNoSecret(result.output);
  });

  it("empty: means unset, so the bot says it uses the embedded database, runs and exits 0", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-empty-url-"));
    try {
      const result = await runBotToExit({ DATABASE_URL: "", CANDLEKEEP_DATA_DIR: dataDir, SYMBOLS: "BTC/USDT" });
      expect(result.code).toBe(0);
      const warning = result.lines.find((line) => line.message === "DATABASE_URL is empty: using the embedded database");
      expect(warning?.level).toBe("warn");
      expect(result.lines.find((line) => line.message === "database ready")?.fields.kind).toBe("embedded");
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  describe("against servers", () => {
    let testDb: TestDatabase;
    let fake: PasswordRejectingServer;
    beforeAll(async () => {
      testDb = await createServerTestDatabase();
      fake = new PasswordRejectingServer();
      await fake.start();
    });
    afterAll(async () => {
      await fake.stop();
      await testDb.drop();
    });

    it("unknown database: one clear line naming it, exit code 1", async () => {
      const url = new URL(TEST_ADMIN_URL);
      url.pathname = "/candlekeep_no_such_database";
      url.password = `${SECRET_A}${SECRET_B}`;
      const result = await runBotToExit({ DATABASE_URL: url.toString() });
      expect(result.code).toBe(1);
      expect(result.errors).toEqual([
        `Database "candlekeep_no_such_database" does not exist on ${url.hostname}:${url.port || 5432}. Create it (CREATE DATABASE "candlekeep_no_such_database") or fix the name in DATABASE_URL.`,
      ]);
      expectNoSecret(result.output);
    });

    it("wrong password (a server that checks passwords): one clear line naming the user, exit code 1, password never shown", async () => {
      const result = await runBotToExit({ DATABASE_URL: `postgresql://bot:${SECRET_A}%40${SECRET_B}@127.0.0.1:${fake.port}/candlekeep` });
      expect(result.code).toBe(1);
      expect(result.errors).toHaveLength(1);
      expect(result.errors[0]).toMatch(/^PostgreSQL at 127\.0\.0\.1:\d+ rejected user "bot" \(password authentication failed for user "bot"\)\. Check the user and password in DATABASE_URL/);
      expectNoSecret(result.output);
    });

    it("percent-encoded @ : / # ? in the password reach the server decoded", async () => {
      const result = await runBotToExit({ DATABASE_URL: `postgresql://bot:${SECRET_A}%40%3A%2F%23%3F${SECRET_B}@127.0.0.1:${fake.port}/candlekeep` });
      expect(result.code).toBe(1);
      expect(fake.logins.at(-1)).toEqual({ user: "bot", database: "candlekeep", password: `${SECRET_A}@:/#?${SECRET_B}` });
      expectNoSecret(result.output);
    });

    it("a password given as ?password= (libpq's form) reaches the server, '+' kept, and is never shown", async () => {
      const result = await runBotToExit({ DATABASE_URL: `postgresql://bot@127.0.0.1:${fake.port}/candlekeep?password=${SECRET_A}+%2B${SECRET_B}` });
      expect(result.code).toBe(1);
      expect(fake.logins.at(-1)).toEqual({ user: "bot", database: "candlekeep", password: `${SECRET_A}++${SECRET_B}` });
      expectNoSecret(result.output);
    });

    it("the server's Unix socket (?host=/var/run/postgresql): the bot stores its data over it, runs and exits 0", async () => {
      const url = new URL(testDb.url ?? "");
      // The name after '@' never resolves (.invalid): only the socket can make this work.
      const overSocket = `postgresql://${url.username}@db.invalid${url.pathname}?host=${TEST_SOCKET_DIR}`;
      const result = await runBotToExit({ DATABASE_URL: overSocket, CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT" });
      expect(result.code).toBe(0);
      expect(result.lines.find((line) => line.message === "database ready")?.fields.target).toBe(`postgresql://${url.username}@db.invalid:5432${url.pathname}?host=${TEST_SOCKET_DIR}`);
      const stored = await openDatabase({ databaseUrl: testDb.url, dataDir: testDb.dataDir, autoMigrate: false, logger: silentLogger });
      try {
        const candles = await stored.sql.query<{ count: string }>("SELECT count(*) AS count FROM candles WHERE symbol = 'BTC/USDT'");
        expect(Number(candles.rows[0]?.count)).toBeGreaterThan(0);
      } finally {
        await stored.close();
      }
    });

    it("percent-encoded special characters are accepted by a real server (which trusts 127.0.0.1, so any password passes)", async () => {
      const url = new URL(testDb.url ?? "");
      const withPassword = `postgresql://${url.username}:${SECRET_A}%40%3A%2F%23%3F${SECRET_B}@${url.host}${url.pathname}`;
      const result = await runBotToExit({ DATABASE_URL: withPassword, CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT" });
      expect(result.code).toBe(0);
      expect(result.lines.find((line) => line.message === "database ready")?.fields.target).toBe(`postgresql://${url.username}:***@${url.host}${url.pathname}`);
      expectNoSecret(result.output);
    });
  });
});
