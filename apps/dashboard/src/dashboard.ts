import fs from "node:fs";
import path from "node:path";
import { UserFacingError } from "@candlekeep/core";
import type { FastifyInstance } from "fastify";
import { dashboardApi, type DashboardSource } from "./api";
import { assertProtected, requireLoopbackHost, requireToken } from "./auth";

/** Where `pnpm build` puts the page; the same path from src/ (tests, tsx) and dist/ (built). */
export const DEFAULT_WEB_DIR = path.resolve(__dirname, "../dist/web");

const ASSETS: Readonly<Record<string, string>> = {
  "/": "index.html",
  "/assets/app.js": "app.js",
  "/assets/app.css": "app.css",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

// Everything the page loads comes from this server: no CDN, works offline.
const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

export interface DashboardOptions {
  source: DashboardSource;
  /** The address the server listens on: anything beyond loopback needs `token`. */
  host: string;
  /** Which setting named `host`, for the refusal message (the bot: HOST; standalone: DASHBOARD_HOST). */
  hostSetting?: string;
  token: string | undefined;
  webDir?: string;
}

/**
 * Adds the dashboard (page + read-only JSON API) to a Fastify server, in its own
 * encapsulated context: the token check covers the dashboard's routes only, so
 * the bot's /healthz stays open to the platform's probe. Without a token, only
 * requests naming localhost, 127.0.0.1 or [::1] and the server's port in Host are served.
 * Throws DashboardUnprotectedError before adding anything when `host` is exposed without a token.
 */
export async function registerDashboard(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  assertProtected(options.host, options.token, options.hostSetting);
  const webDir = options.webDir ?? DEFAULT_WEB_DIR;
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [route, file] of Object.entries(ASSETS)) {
    const full = path.join(webDir, file);
    if (!fs.existsSync(full)) throw new UserFacingError(`The dashboard page is not built (${full} is missing). Run \`pnpm build\` first.`);
    files.set(route, { body: fs.readFileSync(full), type: CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream" });
  }
  const token = options.token;
  await app.register(async (scope) => {
    // With a token, the token; without one (loopback only), this machine's own name in Host (no DNS rebinding).
    scope.addHook("onRequest", token === undefined ? requireLoopbackHost() : requireToken(token));
    scope.addHook("onSend", async (_request, reply) => {
      reply.header("content-security-policy", CSP).header("x-content-type-options", "nosniff").header("cache-control", "no-store");
    });
    for (const [route, file] of files) {
      scope.get(route, async (_request, reply) => reply.type(file.type).send(file.body));
    }
    await scope.register(dashboardApi(options.source));
  });
}
