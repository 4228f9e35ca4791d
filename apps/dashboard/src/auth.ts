import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { UserFacingError } from "@candlekeep/core";
import type { FastifyReply, FastifyRequest } from "fastify";

/** Thrown at start when the dashboard would be reachable from other machines without a token. */
export class DashboardUnprotectedError extends UserFacingError {
  override readonly name = "DashboardUnprotectedError";
  constructor(host: string, hostSetting: string) {
    super(
      `The dashboard would listen on ${host} (${hostSetting}), reachable from other machines, without a token. ` +
        `Set DASHBOARD_TOKEN to a long random secret (e.g. \`openssl rand -hex 24\`), or bind to 127.0.0.1.`,
    );
  }
}

/** True for addresses only this machine can reach: localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(h);
  return false;
}

/** Refuses an exposed address without a token; there is no default password to fall back on. */
export function assertProtected(host: string, token: string | undefined, hostSetting = "DASHBOARD_HOST"): void {
  if (token === undefined && !isLoopbackHost(host)) throw new DashboardUnprotectedError(host, hostSetting);
}

// Comparing digests keeps the comparison constant-time whatever the lengths.
const digest = (value: string) => createHash("sha256").update(value).digest();

/** A token or a base64 credential: visible ASCII, no spaces (RFC 7235's token68 and then some, nothing that could hide a second word). */
const CREDENTIAL = /^[\x21-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The credential a request carries, read exactly: `Bearer <token>` (one space,
 * then the token and nothing else), or `Basic <base64 of user:token>` (what a
 * browser sends). Anything else (a second word after the token, tabs, an empty
 * token, a malformed base64) carries no credential.
 */
export function presentedToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(" ");
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1);
  if (!CREDENTIAL.test(value)) return undefined;
  if (scheme === "bearer") return value;
  if (scheme === "basic" && BASE64.test(value)) {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return colon < 0 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

/**
 * An onRequest hook answering 401 unless the request carries the token. The
 * WWW-Authenticate header makes a browser ask for it (any user name, the token
 * as password) and resend it with the page's own API calls.
 */
export function requireToken(token: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = digest(token);
  return async (request, reply) => {
    const presented = presentedToken(request.headers.authorization);
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return;
    await reply
      .code(401)
      .header("www-authenticate", 'Basic realm="Candlekeep dashboard", charset="UTF-8"')
      .send({ error: "authentication required: send Authorization: Bearer <DASHBOARD_TOKEN>, or basic auth with the token as password" });
  };
}

/** The names a browser on this machine uses for a tokenless dashboard; anything else in `Host` is refused. */
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * True when `host` (a request's Host header) is localhost, 127.0.0.1 or [::1]
 * with `port` (the port the request arrived on; omitted only when it is 80).
 */
export function isLoopbackHostHeader(host: string | undefined, port: number): boolean {
  if (host === undefined) return false;
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host.toLowerCase());
  if (match === null) return false;
  const [, name = "", given] = match;
  return LOOPBACK_NAMES.has(name) && (given === undefined ? port === 80 : Number(given) === port && /^[1-9]/.test(given));
}

/**
 * An onRequest hook for a dashboard without a token (loopback only): answers
 * 421 to any request whose Host header is not this machine's own name and
 * port. A web page on another site that rebinds its DNS name to 127.0.0.1 sends
 * its own name in Host, so it cannot read the dashboard.
 */
export function requireLoopbackHost(): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    const port = request.socket.localPort ?? 0;
    if (isLoopbackHostHeader(request.headers.host, port)) return;
    await reply.code(421).send({
      error: `this dashboard has no token and answers only to http://127.0.0.1:${port}/ or http://localhost:${port}/; set DASHBOARD_TOKEN to open it under another name`,
    });
  };
}
