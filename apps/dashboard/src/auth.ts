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

/** The credential a request carries: `Authorization: Bearer <token>`, or Basic auth whose password is the token (what a browser sends). */
function presentedToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (value === undefined || scheme === undefined) return undefined;
  if (scheme.toLowerCase() === "bearer") return value;
  if (scheme.toLowerCase() === "basic") {
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
