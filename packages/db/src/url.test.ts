import { REDACTED } from "@candlekeep/core";
import { InvalidDatabaseUrlError } from "./errors";
import { parseDatabaseUrl, redactDatabaseUrl, type SslMode } from "./url";

/** Two halves of a password that must never show up in a message or a redacted URL. */
const SECRET_HEAD = "Hunt3rTw0";
const SECRET_TAIL = "Xyzzy9";

function rejection(raw: string): InvalidDatabaseUrlError {
  try {
    parseDatabaseUrl(raw);
  } catch (error) {
    if (error instanceof InvalidDatabaseUrlError) return error;
    throw error;
  }
  throw new Error(`parseDatabaseUrl accepted ${JSON.stringify(raw)}`);
}

function expectNoSecret(text: string): void {
  expect(text).not.toContain(SECRET_HEAD);
  expect(text).not.toContain(SECRET_TAIL);
}

describe("parseDatabaseUrl accepts", () => {
  it("a full postgresql:// URL and keeps every part", () => {
    const url = parseDatabaseUrl(`postgresql://bot:${SECRET_HEAD}@db.example.com:25060/candlekeep?sslmode=require&application_name=bot-1`);
    expect(url).toEqual({
      host: "db.example.com",
      port: 25060,
      database: "candlekeep",
      user: "bot",
      password: SECRET_HEAD,
      sslMode: "require",
      applicationName: "bot-1",
      connectTimeoutMs: undefined,
      keepalives: undefined,
      keepalivesIdleMs: undefined,
      keepalivesIntervalMs: undefined,
      keepalivesCount: undefined,
      tcpUserTimeoutMs: undefined,
      unusedParameters: [],
      redacted: `postgresql://bot:${REDACTED}@db.example.com:25060/candlekeep?sslmode=require&application_name=bot-1`,
    });
  });

  it("the postgres:// scheme, defaulting the port to 5432", () => {
    const url = parseDatabaseUrl(`postgres://bot:${SECRET_HEAD}@localhost/app`);
    expect(url).toMatchObject({ host: "localhost", port: 5432, database: "app", user: "bot", password: SECRET_HEAD, sslMode: undefined, applicationName: undefined, unusedParameters: [] });
    expect(url.redacted).toBe(`postgres://bot:${REDACTED}@localhost:5432/app`);
  });

  it("leading and trailing whitespace around the URL", () => {
    expect(parseDatabaseUrl(`  postgres://bot@localhost/app\n`)).toMatchObject({ host: "localhost", database: "app", password: undefined });
  });

  it("a URL without a password, and says so in the redacted form", () => {
    const url = parseDatabaseUrl("postgresql://bot@10.0.0.5:6432/app");
    expect(url).toMatchObject({ user: "bot", password: undefined, host: "10.0.0.5", port: 6432 });
    expect(url.redacted).toBe("postgresql://bot@10.0.0.5:6432/app");
  });

  it("a bracketed IPv6 host with and without a port", () => {
    const withPort = parseDatabaseUrl(`postgres://bot:${SECRET_HEAD}@[::1]:6543/app`);
    expect(withPort).toMatchObject({ host: "::1", port: 6543, database: "app" });
    expect(withPort.redacted).toBe(`postgres://bot:${REDACTED}@[::1]:6543/app`);
    expect(parseDatabaseUrl("postgres://bot@[2001:db8::5]/app")).toMatchObject({ host: "2001:db8::5", port: 5432 });
  });

  it.each<SslMode>(["disable", "allow", "prefer", "require", "verify-ca", "verify-full", "no-verify"])("sslmode=%s", (mode) => {
    const url = parseDatabaseUrl(`postgresql://bot:${SECRET_HEAD}@db/app?sslmode=${mode}`);
    expect(url.sslMode).toBe(mode);
    expect(url.unusedParameters).toEqual([]);
  });

  it("a percent-encoded password with @ : / # ? and %, decoded exactly", () => {
    const raw = `postgresql://bot:${SECRET_HEAD}%40%3A%2F%23%3F%25${SECRET_TAIL}@db.example.com:5432/app`;
    const url = parseDatabaseUrl(raw);
    expect(url.password).toBe(`${SECRET_HEAD}@:/#?%${SECRET_TAIL}`);
    expect(url).toMatchObject({ user: "bot", host: "db.example.com", port: 5432, database: "app" });
    expectNoSecret(url.redacted);
    expect(url.redacted).toBe(`postgresql://bot:${REDACTED}@db.example.com:5432/app`);
  });

  it("a percent-encoded user and database name", () => {
    expect(parseDatabaseUrl("postgres://doadmin%40team@db/my%20db")).toMatchObject({ user: "doadmin@team", database: "my db" });
  });

  it("a password given as a query parameter, used as the password and kept out of the redacted form", () => {
    const url = parseDatabaseUrl(`postgres://bot@db/app?password=${SECRET_HEAD}%2B1+2&application_name=x`);
    // Percent-decoded as libpq does: '+' stays '+' (a form decoder would make it a space).
    expect(url.password).toBe(`${SECRET_HEAD}+1+2`);
    expectNoSecret(url.redacted);
    expect(url.redacted).toBe(`postgres://bot@db:5432/app?password=${REDACTED}&application_name=x`);
  });

  it("a Unix socket directory as ?host= (Prisma's form), with or without a host after '@'", () => {
    const prismaForm = parseDatabaseUrl(`postgresql://bot:${SECRET_HEAD}@localhost/app?host=/var/run/postgresql&sslmode=require`);
    expect(prismaForm).toMatchObject({ host: "/var/run/postgresql", port: 5432, database: "app", user: "bot", password: SECRET_HEAD, unusedParameters: [] });
    expect(prismaForm.redacted).toBe(`postgresql://bot:${REDACTED}@localhost:5432/app?host=/var/run/postgresql&sslmode=require`);
    const noHost = parseDatabaseUrl("postgres://bot@/app?host=%2Ftmp%2Fpg%20sockets&port=6432");
    expect(noHost).toMatchObject({ host: "/tmp/pg sockets", port: 6432, database: "app" });
    expect(noHost.redacted).toBe("postgres://bot@/app?host=%2Ftmp%2Fpg%20sockets&port=6432");
    expect(parseDatabaseUrl("postgresql:///app?host=/var/run/postgresql&user=bot")).toMatchObject({ host: "/var/run/postgresql", user: "bot" });
  });

  it("libpq's host, port and user in the query, winning over the authority's", () => {
    expect(parseDatabaseUrl("postgres://bot@db:5432/app?host=db2.internal&port=6432&user=reader")).toMatchObject({ host: "db2.internal", port: 6432, user: "reader", database: "app" });
  });

  it("a Unix socket directory percent-encoded after '@' (libpq's form)", () => {
    const url = parseDatabaseUrl("postgresql://bot@%2Fvar%2Frun%2Fpostgresql:5433/app");
    expect(url).toMatchObject({ host: "/var/run/postgresql", port: 5433, database: "app" });
    expect(url.redacted).toBe("postgresql://bot@%2Fvar%2Frun%2Fpostgresql:5433/app");
  });

  it("?schema=public, and names the parameters it does not use", () => {
    const url = parseDatabaseUrl(`postgresql://bot:${SECRET_HEAD}@db/app?schema=public&connection_limit=5&pool_timeout=${SECRET_TAIL}`);
    expect(url.unusedParameters).toEqual(["connection_limit", "pool_timeout"]);
  });

  it("libpq's connect_timeout in whole seconds: 0 or less waits without limit, 1 means 2 (libpq's minimum)", () => {
    const timeout = (value: string) => parseDatabaseUrl(`postgresql://bot@db/app?connect_timeout=${value}`);
    expect(timeout("5")).toMatchObject({ connectTimeoutMs: 5000, unusedParameters: [] });
    expect(timeout("1").connectTimeoutMs).toBe(2000);
    expect(timeout("0").connectTimeoutMs).toBe(0);
    expect(timeout("-3").connectTimeoutMs).toBe(0);
  });

  it("libpq's keepalives: 0 turns TCP keepalive off, any other whole number on", () => {
    const keepalives = (value: string) => parseDatabaseUrl(`postgresql://bot@db/app?keepalives=${value}`);
    expect(keepalives("1")).toMatchObject({ keepalives: true, unusedParameters: [] });
    expect(keepalives("0").keepalives).toBe(false);
    expect(keepalives("2").keepalives).toBe(true);
  });

  it("libpq's keepalives_idle and keepalives_interval in whole seconds (kept in ms): 0 is the system's default, and so is a negative value, as in libpq", () => {
    const url = parseDatabaseUrl("postgresql://bot@db/app?keepalives_idle=15&keepalives_interval=5");
    expect(url).toMatchObject({ keepalivesIdleMs: 15_000, keepalivesIntervalMs: 5000, keepalivesCount: undefined, tcpUserTimeoutMs: undefined, unusedParameters: [] });
    expect(parseDatabaseUrl("postgresql://bot@db/app?keepalives_idle=0&keepalives_interval=-4")).toMatchObject({ keepalivesIdleMs: 0, keepalivesIntervalMs: 0 });
    expect(parseDatabaseUrl("postgresql://bot@db/app?keepalives_idle=32767").keepalivesIdleMs).toBe(32_767_000);
  });

  it("libpq's keepalives_count (probes) and tcp_user_timeout (milliseconds)", () => {
    const url = parseDatabaseUrl("postgresql://bot@db/app?keepalives_count=4&tcp_user_timeout=45000");
    expect(url).toMatchObject({ keepalivesCount: 4, tcpUserTimeoutMs: 45_000, keepalivesIdleMs: undefined, unusedParameters: [] });
    expect(parseDatabaseUrl("postgresql://bot@db/app?keepalives_count=-1&tcp_user_timeout=0")).toMatchObject({ keepalivesCount: 0, tcpUserTimeoutMs: 0 });
  });

  it("all of libpq's TCP parameters together, with the other ones, none named as unused", () => {
    const url = parseDatabaseUrl(
      `postgresql://bot:${SECRET_HEAD}@db/app?sslmode=require&connect_timeout=5&keepalives=1&keepalives_idle=20&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=35000`,
    );
    expect(url).toMatchObject({ connectTimeoutMs: 5000, keepalives: true, keepalivesIdleMs: 20_000, keepalivesIntervalMs: 5000, keepalivesCount: 3, tcpUserTimeoutMs: 35_000, unusedParameters: [] });
    expect(url.redacted).toBe(`postgresql://bot:${REDACTED}@db:5432/app?sslmode=require&connect_timeout=5&keepalives=1&keepalives_idle=20&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=35000`);
  });
});

describe("parseDatabaseUrl rejects, in one line naming the problem and the fix, without the password,", () => {
  const cases: Array<[string, string, RegExp[]]> = [
    ["an empty value", "", [/is empty/, /unset it to use the embedded database/, /postgresql:\/\/user:password@host:5432\/dbname/]],
    ["whitespace only", "  \t \n ", [/is empty/, /unset it/]],
    ["a mysql:// URL", `mysql://bot:${SECRET_HEAD}@db:3306/app`, [/scheme "mysql:\/\/" is not PostgreSQL/, /use postgresql:\/\/ or postgres:\/\//]],
    ["an http:// URL", `http://bot:${SECRET_HEAD}@db/app`, [/scheme "http:\/\/" is not PostgreSQL/, /use postgresql:\/\//]],
    ["a URL without a scheme", `bot:${SECRET_HEAD}@db:5432/app`, [/must start with postgresql:\/\/ or postgres:\/\//, /expected postgresql:\/\/user:password@host:5432\/dbname/]],
    ["a missing host", `postgres://bot:${SECRET_HEAD}@/app`, [/has no host/, /after '@'/]],
    ["a missing host before a port", `postgres://bot:${SECRET_HEAD}@:5432/app`, [/has no host/]],
    ["user:password with no host at all", `postgres://bot:${SECRET_HEAD}/app`, [/not a port number/, /the host is missing/]],
    ["a numeric password with no host at all", "postgres://bot:987654321/app", [/port after ':' is out of range/, /the host is missing/]],
    ["a non-numeric port", `postgres://bot:${SECRET_HEAD}@db:54x2/app`, [/port "54x2" is not a number/, /use e\.g\. :5432/]],
    ["port 0", `postgres://bot:${SECRET_HEAD}@db:0/app`, [/port 0 is out of range \(1-65535\)/]],
    ["port 65536", `postgres://bot:${SECRET_HEAD}@db:65536/app`, [/port 65536 is out of range \(1-65535\)/]],
    ["a missing database name", `postgres://bot:${SECRET_HEAD}@db:5432`, [/names no database/, /add \/dbname after the host/]],
    ["an empty database name", `postgres://bot:${SECRET_HEAD}@db:5432/?sslmode=require`, [/names no database/]],
    ["an unencoded '@' in the password", `postgres://bot:${SECRET_HEAD}@${SECRET_TAIL}@db/app`, [/password contains an unencoded '@'/, /@ → %40/]],
    ["an unencoded ':' in the password", `postgres://bot:${SECRET_HEAD}:${SECRET_TAIL}@db/app`, [/password contains an unencoded ':'/, /: → %3A/]],
    ["an unencoded '#' in the password", `postgres://bot:${SECRET_HEAD}#${SECRET_TAIL}@db/app`, [/password contains an unencoded '#'/, /# → %23/]],
    ["an unencoded '?' in the password", `postgres://bot:${SECRET_HEAD}?${SECRET_TAIL}@db/app`, [/password contains an unencoded '\?'/, /\? → %3F/]],
    ["an unencoded '/' in the password", `postgres://bot:${SECRET_HEAD}/${SECRET_TAIL}@db/app`, [/password contains an unencoded '\/'/, /\/ → %2F/]],
    ["an unencoded '@' in the user name", `postgres://bot@team:${SECRET_HEAD}@db/app`, [/user name contains an unencoded '@'/, /@ → %40/]],
    ["a malformed percent-escape in the password", `postgres://bot:${SECRET_HEAD}%zz${SECRET_TAIL}@db/app`, [/password has a malformed percent-escape/, /% → %25/]],
    ["a truncated percent-escape in the password", `postgres://bot:${SECRET_HEAD}%4${SECRET_TAIL}@db/app`, [/password has a malformed percent-escape/]],
    ["a ?host= that is neither a server name nor a socket directory", `postgres://bot:${SECRET_HEAD}@db/app?host=run%2Fpostgresql`, [/host "run\/postgresql" is not a valid host name/, /socket directory starts with '\/'/]],
    ["no host and no ?host=", `postgres://bot:${SECRET_HEAD}@/app?sslmode=disable`, [/has no host/, /\?host=\/var\/run\/postgresql/]],
    ["a non-numeric ?port=", `postgres://bot:${SECRET_HEAD}@/app?host=/var/run/postgresql&port=x`, [/port "x" is not a number/]],
    ["a connect_timeout that is not whole seconds", `postgres://bot:${SECRET_HEAD}@db/app?connect_timeout=2.5`, [/connect_timeout "2\.5" is not a whole number of seconds/, /0 waits without limit/]],
    ["a keepalives that is not a whole number", `postgres://bot:${SECRET_HEAD}@db/app?keepalives=yes`, [/keepalives "yes" is not a whole number/, /1 turns TCP keepalive on, 0 off/]],
    ["a keepalives_idle that is not whole seconds", `postgres://bot:${SECRET_HEAD}@db/app?keepalives_idle=2.5`, [/keepalives_idle "2\.5" is not a whole number of seconds/, /0: the system's default/]],
    ["a keepalives_idle beyond what TCP accepts", `postgres://bot:${SECRET_HEAD}@db/app?keepalives_idle=40000`, [/keepalives_idle 40000 is out of range \(0-32767 seconds\)/]],
    ["a keepalives_interval given in ms", `postgres://bot:${SECRET_HEAD}@db/app?keepalives_interval=10s`, [/keepalives_interval "10s" is not a whole number of seconds/]],
    ["a keepalives_interval beyond what TCP accepts", `postgres://bot:${SECRET_HEAD}@db/app?keepalives_interval=99999`, [/keepalives_interval 99999 is out of range \(0-32767 seconds\)/]],
    ["an empty keepalives_count", `postgres://bot:${SECRET_HEAD}@db/app?keepalives_count=`, [/keepalives_count "" is not a whole number of probes/]],
    ["a keepalives_count beyond what TCP accepts", `postgres://bot:${SECRET_HEAD}@db/app?keepalives_count=128`, [/keepalives_count 128 is out of range \(0-127 probes\)/]],
    ["a tcp_user_timeout in seconds with a unit", `postgres://bot:${SECRET_HEAD}@db/app?tcp_user_timeout=30s`, [/tcp_user_timeout "30s" is not a whole number of milliseconds/]],
    ["a tcp_user_timeout beyond an int", `postgres://bot:${SECRET_HEAD}@db/app?tcp_user_timeout=9999999999`, [/tcp_user_timeout 9999999999 is out of range \(0-2147483647 milliseconds\)/]],
    ["a schema other than public", `postgres://bot:${SECRET_HEAD}@db/app?schema=trading`, [/schema "trading" is not supported/, /public schema/, /remove \?schema=/]],
    ["a malformed percent-escape in a query password", `postgres://bot@db/app?password=${SECRET_HEAD}%zz`, [/value of query parameter "password" has a malformed percent-escape/]],
    ["an unknown sslmode", `postgres://bot:${SECRET_HEAD}@db/app?sslmode=verify`, [/sslmode "verify" is not one of disable, allow, prefer, require, verify-ca, verify-full, no-verify/]],
  ];

  it.each(cases)("%s", (_what, raw, expected) => {
    const error = rejection(raw);
    expect(error.name).toBe("InvalidDatabaseUrlError");
    expect(error.message).toMatch(/^Invalid DATABASE_URL: .+\.$/);
    expect(error.message).not.toMatch(/[\r\n]/);
    for (const pattern of expected) expect(error.message).toMatch(pattern);
    expectNoSecret(error.message);
    expect(error.message).not.toContain("987654321");
    expectNoSecret(redactDatabaseUrl(raw));
  });
});

describe("redactDatabaseUrl", () => {
  it("masks the password of a URL that parses and of one that does not", () => {
    expect(redactDatabaseUrl(`postgres://bot:${SECRET_HEAD}@db:5432/app`)).toBe(`postgres://bot:${REDACTED}@db:5432/app`);
    expect(redactDatabaseUrl(`postgres://bot:${SECRET_HEAD}@${SECRET_TAIL}@db/app`)).toBe(`postgres://bot:${REDACTED}@db/app`);
    expect(redactDatabaseUrl(`bot:${SECRET_HEAD}@db/app`)).toBe(`${REDACTED}@db/app`);
  });

  it("masks what follows ':' when the host is missing and it cannot be a port", () => {
    expect(redactDatabaseUrl(`postgres://bot:${SECRET_HEAD}/app`)).toBe(`postgres://bot:${REDACTED}/app`);
    expect(redactDatabaseUrl("postgres://bot:987654321/app")).toBe(`postgres://bot:${REDACTED}/app`);
  });

  it("leaves a URL without credentials unchanged", () => {
    expect(redactDatabaseUrl("postgres://db:5432/app?sslmode=require")).toBe("postgres://db:5432/app?sslmode=require");
    expect(redactDatabaseUrl("postgres://[::1]:5432/app")).toBe("postgres://[::1]:5432/app");
  });
});
