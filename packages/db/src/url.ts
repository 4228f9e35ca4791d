import { isSecretKey, REDACTED } from "@candlekeep/core";
import { InvalidDatabaseUrlError } from "./errors";

export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full" | "no-verify";
const SSL_MODES: readonly SslMode[] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full", "no-verify"];

/** A validated PostgreSQL connection target. `redacted` is safe to log. */
export interface DatabaseUrl {
  /** A server name or address, or (starting with '/') the directory of the server's Unix socket. */
  host: string;
  port: number;
  database: string;
  user: string;
  password: string | undefined;
  sslMode: SslMode | undefined;
  /** `application_name` from the query, if given. */
  applicationName: string | undefined;
  /** libpq's `connect_timeout` from the query, in ms (0: no limit); undefined when not given. */
  connectTimeoutMs: number | undefined;
  /** libpq's `keepalives` from the query: false for 0 (TCP keepalive off), true for any other whole number; undefined when not given. */
  keepalives: boolean | undefined;
  /** libpq's `keepalives_idle` (seconds of silence before the first probe), in ms (0: the system's default); undefined when not given. */
  keepalivesIdleMs: number | undefined;
  /** libpq's `keepalives_interval` (seconds between unanswered probes), in ms (0: the system's default); undefined when not given. */
  keepalivesIntervalMs: number | undefined;
  /** libpq's `keepalives_count` (unanswered probes before the connection is dropped; 0: the system's default); undefined when not given. */
  keepalivesCount: number | undefined;
  /** libpq's `tcp_user_timeout` (ms sent data may stay unacknowledged; 0: the system's default); undefined when not given. */
  tcpUserTimeoutMs: number | undefined;
  /** Names of query parameters the connection does not use (their values may be secrets). */
  unusedParameters: readonly string[];
  redacted: string;
}

/** True when `host` names a Unix socket directory rather than a server. */
export function isSocketHost(host: string): boolean {
  return host.startsWith("/");
}

const EXAMPLE = "postgresql://user:password@host:5432/dbname";
const ENCODING_HINT =
  "percent-encode special characters in the user or password (@ → %40, : → %3A, / → %2F, # → %23, ? → %3F, % → %25)";

/** A problem found while parsing; parseDatabaseUrl names the setting it came from. */
class UrlProblem extends Error {}

function fail(problem: string): never {
  throw new UrlProblem(problem);
}

/** Masks the values of secret-looking query parameters (`?password=…`, `sslpassword=…`). */
function redactQuery(text: string): string {
  return text.replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole: string, separator: string, key: string) => (isSecretKey(key) ? `${separator}${key}=${REDACTED}` : whole));
}

/** The scheme://user:***@host… form of any string, even one that does not parse. */
export function redactDatabaseUrl(raw: string): string {
  const schemeEnd = raw.indexOf("://");
  if (schemeEnd < 0) return redactQuery(raw.includes("@") ? `${REDACTED}@${raw.slice(raw.lastIndexOf("@") + 1)}` : raw);
  const rest = raw.slice(schemeEnd + 3);
  const at = rest.lastIndexOf("@");
  if (at < 0) {
    // "user:password/db" (host forgotten) reads as host:port: mask a "port" that cannot be one.
    const authorityEnd = rest.search(/[/?#]/);
    const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
    const colon = authority.startsWith("[") ? -1 : authority.indexOf(":");
    const port = colon < 0 ? "" : authority.slice(colon + 1);
    if (colon < 0 || (/^\d{0,5}$/.test(port) && Number(port) <= 65535)) return redactQuery(raw);
    return redactQuery(`${raw.slice(0, schemeEnd + 3)}${authority.slice(0, colon)}:${REDACTED}${rest.slice(authority.length)}`);
  }
  const userInfo = rest.slice(0, at);
  const colon = userInfo.indexOf(":");
  const user = colon < 0 ? userInfo : userInfo.slice(0, colon);
  return redactQuery(`${raw.slice(0, schemeEnd + 3)}${colon < 0 ? user : `${user}:${REDACTED}`}@${rest.slice(at + 1)}`);
}

function decode(component: string, what: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return fail(`the ${what} has a malformed percent-escape; ${ENCODING_HINT}`);
  }
}

/** A port number from the URL, or a rejection; `missingHost` replaces the echo of text that may be a password. */
function portNumber(text: string, missingHost: string | undefined): number {
  if (!/^\d+$/.test(text)) fail(missingHost === undefined ? `port "${text}" is not a number; use e.g. :5432` : `the text after ':' is not a port number; ${missingHost}`);
  const port = Number(text);
  if (port < 1 || port > 65535) fail(missingHost === undefined ? `port ${port} is out of range (1-65535)` : `the port after ':' is out of range (1-65535); ${missingHost}`);
  return port;
}

/** Query parameters the connection uses; see parseDatabaseUrl. */
const USED_PARAMETERS: ReadonlySet<string> = new Set([
  "host",
  "port",
  "user",
  "password",
  "sslmode",
  "application_name",
  "connect_timeout",
  "keepalives",
  "keepalives_idle",
  "keepalives_interval",
  "keepalives_count",
  "tcp_user_timeout",
  "schema",
]);

/**
 * libpq's `connect_timeout`: whole seconds; zero or less waits without limit,
 * and 1 means 2 (libpq's minimum).
 */
function connectTimeoutMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(text)) fail(`connect_timeout "${text}" is not a whole number of seconds (0 waits without limit)`);
  const seconds = Number(text);
  return seconds <= 0 ? 0 : Math.max(seconds, 2) * 1000;
}

/**
 * One of libpq's whole-number TCP parameters (keepalives_idle, keepalives_interval,
 * keepalives_count, tcp_user_timeout): as in libpq, a negative value means 0, the
 * system's default. `max` is what Linux accepts for the socket option.
 */
function tcpParameter(name: string, text: string | undefined, unit: "seconds" | "milliseconds" | "probes", max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(text)) fail(`${name} "${text}" is not a whole number of ${unit} (0: the system's default)`);
  const value = Math.max(0, Number(text));
  if (value > max) fail(`${name} ${value} is out of range (0-${max} ${unit})`);
  return value;
}

function inMs(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000;
}

/** libpq's `keepalives`: a whole number, 0 turning TCP keepalive off and any other turning it on. */
function keepalivesOn(text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(text)) fail(`keepalives "${text}" is not a whole number (1 turns TCP keepalive on, 0 off)`);
  return Number(text) !== 0;
}

/** Linux's largest TCP_KEEPIDLE and TCP_KEEPINTVL (seconds), TCP_KEEPCNT, and TCP_USER_TIMEOUT (ms, an int). */
const MAX_KEEPALIVE_SECONDS = 32_767;
const MAX_KEEPALIVE_COUNT = 127;
const MAX_TCP_USER_TIMEOUT_MS = 2_147_483_647;

/**
 * The query's parameters, percent-decoded as libpq decodes them ('+' stays '+',
 * unlike URLSearchParams, which would turn it into a space in a password).
 */
function queryParameters(query: string): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const key = decode(equals < 0 ? pair : pair.slice(0, equals), "query parameter name");
    parameters.set(key, equals < 0 ? "" : decode(pair.slice(equals + 1), `value of query parameter "${key}"`));
  }
  return parameters;
}

/**
 * Validates a PostgreSQL URL and returns its parts. Every rejection is one line
 * that names `setting` (where the URL came from), the problem and the fix, and
 * never contains the password.
 */
export function parseDatabaseUrl(raw: string, setting = "DATABASE_URL"): DatabaseUrl {
  try {
    return parseUrl(raw);
  } catch (error) {
    if (error instanceof UrlProblem) throw new InvalidDatabaseUrlError(`Invalid ${setting}: ${error.message}.`);
    throw error;
  }
}

function parseUrl(raw: string): DatabaseUrl {
  const text = raw.trim();
  if (text === "") {
    fail(`it is empty; unset it to use the embedded database, or set it to ${EXAMPLE}`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1];
  if (scheme === undefined) fail(`it must start with postgresql:// or postgres:// (expected ${EXAMPLE})`);
  if (!["postgres", "postgresql"].includes(scheme.toLowerCase())) {
    fail(`scheme "${scheme}://" is not PostgreSQL; use postgresql:// or postgres:// (expected ${EXAMPLE})`);
  }

  // Split by hand instead of new URL(): WHATWG parsing silently reinterprets an
  // unencoded '#', '?' or '/' in a password, and we want to name that mistake.
  const afterScheme = text.slice(scheme.length + 3);
  const authorityEnd = afterScheme.search(/[/?#]/);
  const authority = authorityEnd < 0 ? afterScheme : afterScheme.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? "" : afterScheme.slice(authorityEnd);
  if (!authority.includes("@") && tail.includes("@")) {
    // An '@' after a '/', '?' or '#': that character was part of the user or password
    // (after the first ':' it is the password).
    fail(`the ${authority.includes(":") ? "password" : "user name"} contains an unencoded '${afterScheme.charAt(authorityEnd)}'; ${ENCODING_HINT}`);
  }
  const at = authority.lastIndexOf("@");
  const userInfo = at < 0 ? "" : authority.slice(0, at);
  const hostPort = at < 0 ? authority : authority.slice(at + 1);
  if (userInfo.includes("@")) {
    const firstColon = userInfo.indexOf(":");
    const inPassword = firstColon >= 0 && firstColon < userInfo.indexOf("@");
    fail(`the ${inPassword ? "password" : "user name"} contains an unencoded '@'; ${ENCODING_HINT}`);
  }
  const colon = userInfo.indexOf(":");
  const rawUser = colon < 0 ? userInfo : userInfo.slice(0, colon);
  const rawPassword = colon < 0 ? undefined : userInfo.slice(colon + 1);
  if (rawPassword?.includes(":")) fail(`the password contains an unencoded ':'; ${ENCODING_HINT}`);

  let authorityHost: string;
  let portText: string | undefined;
  const ipv6 = /^\[([^\]]+)\](?::(.*))?$/.exec(hostPort);
  if (ipv6) {
    authorityHost = ipv6[1] ?? "";
    portText = ipv6[2];
  } else {
    const portColon = hostPort.lastIndexOf(":");
    authorityHost = portColon < 0 ? hostPort : hostPort.slice(0, portColon);
    portText = portColon < 0 ? undefined : hostPort.slice(portColon + 1);
  }
  // libpq's way to name a socket directory in the authority: percent-encoded, %2Fvar%2Frun%2Fpostgresql.
  if (/^%2f/i.test(authorityHost)) authorityHost = decode(authorityHost, "socket directory");
  // Without an '@', "user:password/db" reads as host:port: echo neither then, it may be the password.
  const echo = at >= 0;
  let port = 5432;
  if (portText !== undefined && portText !== "") {
    const missingHost = `if it is user:password, the host is missing (expected ${EXAMPLE})`;
    port = portNumber(portText, echo ? undefined : missingHost);
  }

  const queryStart = tail.indexOf("?");
  const path = (queryStart < 0 ? tail : tail.slice(0, queryStart)).replace(/#.*$/, "");
  const query = queryStart < 0 ? "" : tail.slice(queryStart + 1).replace(/#.*$/, "");
  const database = decode(path.replace(/^\//, ""), "database name");
  const parameters = queryParameters(query);

  // libpq's connection parameters in the query win over the authority (?host=/var/run/postgresql is how
  // Prisma's documentation names a socket); sslmode and application_name shape the connection.
  const host = parameters.get("host") ?? authorityHost;
  if (host === "") fail(`it has no host; put the server name after '@', or add ?host=/var/run/postgresql for the server's Unix socket (expected ${EXAMPLE})`);
  if (!isSocketHost(host) && /[\s%/]/.test(host)) {
    fail(echo || parameters.has("host") ? `host "${host}" is not a valid host name (a Unix socket directory starts with '/')` : `the host is not a valid host name (expected ${EXAMPLE})`);
  }
  const portParameter = parameters.get("port");
  if (portParameter !== undefined) port = portNumber(portParameter, undefined);
  if (database === "") fail(`it names no database; add /dbname after the host (expected ${EXAMPLE})`);
  if (database.includes("/")) fail(`database name "${database}" contains '/'`);
  const sslModeText = parameters.get("sslmode");
  if (sslModeText !== undefined && !(SSL_MODES as readonly string[]).includes(sslModeText)) {
    fail(`sslmode "${sslModeText}" is not one of ${SSL_MODES.join(", ")}`);
  }
  const sslMode = sslModeText as SslMode | undefined;
  // Prisma's ?schema= moves `prisma migrate deploy` into another schema; the bot's own queries would
  // still find the tables in public, so the two would part ways.
  const schema = parameters.get("schema");
  if (schema !== undefined && schema !== "public") {
    fail(`schema "${schema}" is not supported: Candlekeep keeps its tables in the public schema; remove ?schema= or give the bot a database of its own`);
  }

  const user = parameters.get("user") ?? decode(rawUser, "user name");
  if (user === "") fail(`it names no user; use ${EXAMPLE}`);
  const password = parameters.get("password") ?? (rawPassword === undefined ? undefined : decode(rawPassword, "password"));
  const unusedParameters = [...parameters.keys()].filter((key) => !USED_PARAMETERS.has(key));
  const hostForDisplay = isSocketHost(authorityHost) ? encodeURIComponent(authorityHost) : authorityHost.includes(":") ? `[${authorityHost}]` : authorityHost;
  const authorityForDisplay = authorityHost === "" ? "" : `${hostForDisplay}:${port}`;
  const redacted = `${scheme}://${rawUser}${rawPassword === undefined ? "" : `:${REDACTED}`}@${authorityForDisplay}/${path.replace(/^\//, "")}${query ? redactQuery(`?${query}`) : ""}`;
  return {
    host,
    port,
    database,
    user,
    password,
    sslMode,
    applicationName: parameters.get("application_name"),
    connectTimeoutMs: connectTimeoutMs(parameters.get("connect_timeout")),
    keepalives: keepalivesOn(parameters.get("keepalives")),
    keepalivesIdleMs: inMs(tcpParameter("keepalives_idle", parameters.get("keepalives_idle"), "seconds", MAX_KEEPALIVE_SECONDS)),
    keepalivesIntervalMs: inMs(tcpParameter("keepalives_interval", parameters.get("keepalives_interval"), "seconds", MAX_KEEPALIVE_SECONDS)),
    keepalivesCount: tcpParameter("keepalives_count", parameters.get("keepalives_count"), "probes", MAX_KEEPALIVE_COUNT),
    tcpUserTimeoutMs: tcpParameter("tcp_user_timeout", parameters.get("tcp_user_timeout"), "milliseconds", MAX_TCP_USER_TIMEOUT_MS),
    unusedParameters,
    redacted,
  };
}
