import fs from "node:fs";
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "@candlekeep/core";
import Fastify, { type FastifyInstance } from "fastify";

/**
 * The HTTP server the bot (/healthz, /metrics, its dashboard) and the standalone
 * dashboard listen with: a client cannot starve it of connections or the process
 * of file descriptors, and cannot hold a connection open for long without
 * sending a whole request.
 */

/** How long each part of a request may take, in ms. */
export const HTTP_TIMEOUTS = {
  /** From the connection (or the end of the previous response) to the end of the request's headers: cuts silent and slow-loris clients (408). */
  headersMs: 10_000,
  /** The whole request (a GET has no body: the same as the headers, with room to spare). */
  requestMs: 20_000,
  /**
   * An idle keep-alive connection is closed after this: longer than the 60 s a load balancer in front
   * usually keeps one (it would otherwise reuse a connection the server has just closed, a 502), and
   * idle ones are the first closed when connections run short (capConnections).
   */
  keepAliveMs: 65_000,
  /** Cooperative limit on a route's work: 503 when the response is not sent by then (the database reads have their own, shorter, deadline). */
  handlerMs: 15_000,
  /** A connection with no traffic at all in either direction for this long is destroyed. */
  idleSocketMs: 30_000,
  /** How often node checks the header and request timeouts (its default, 30 s, would let a slow client stay up to 40 s). */
  checkIntervalMs: 1_000,
} as const;

/** The most connections the server keeps open; plenty for a health probe, Prometheus and a few browsers. */
export const MAX_HTTP_CONNECTIONS = 256;
/** Never fewer, whatever the descriptor limit. */
const MIN_HTTP_CONNECTIONS = 16;
/**
 * Descriptors kept for everything else the process opens besides the database
 * pool: node's own (stdio, event loop, worker pipes: about 40 for a running bot),
 * exchange sockets (a few per concurrently fetched coin), log files, the
 * embedded engine's files, and a margin.
 */
export const RESERVED_DESCRIPTORS = 128;
/** Once this many connections (a quarter of a small cap) are left before the cap, every new connection closes the oldest idle one. */
const FREE_SLOTS = 16;
/** When the open-file limit cannot be read (not Linux): the usual soft limit. */
const ASSUMED_DESCRIPTOR_LIMIT = 1024;
const EVICTION_LOG_INTERVAL_MS = 60_000;

/** The process's open-file limit (`ulimit -n`, as node raised it at start), from /proc/self/limits; 1024 where it cannot be read. */
export function descriptorLimit(limitsFile = "/proc/self/limits"): number {
  try {
    const line = fs
      .readFileSync(limitsFile, "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    if (soft === "unlimited") return Number.POSITIVE_INFINITY;
    const value = Number(soft);
    return Number.isInteger(value) && value > 0 ? value : ASSUMED_DESCRIPTOR_LIMIT;
  } catch {
    return ASSUMED_DESCRIPTOR_LIMIT;
  }
}

/**
 * The connection cap: what the descriptor limit leaves after the database pool
 * and RESERVED_DESCRIPTORS, at most MAX_HTTP_CONNECTIONS (at least 16).
 * With `ulimit -n 1024` and the bot's pool of 30: min(256, 1024 − 128 − 30 = 866) = 256.
 */
export function connectionCap(limit: number, poolMax: number): number {
  return Math.max(MIN_HTTP_CONNECTIONS, Math.min(MAX_HTTP_CONNECTIONS, limit - RESERVED_DESCRIPTORS - poolMax));
}

export interface HttpServerOptions {
  /** The database pool's size (DATABASE_POOL_MAX): its connections are descriptors too. */
  poolMax: number;
  logger: Logger;
  /** Defaults to the process's (descriptorLimit()). */
  descriptorLimit?: number;
}

/** A Fastify instance with the timeouts above and the connection cap applied to its server (not listening yet). */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    connectionTimeout: HTTP_TIMEOUTS.idleSocketMs,
    keepAliveTimeout: HTTP_TIMEOUTS.keepAliveMs,
    requestTimeout: HTTP_TIMEOUTS.requestMs,
    handlerTimeout: HTTP_TIMEOUTS.handlerMs,
    // Read-only GET routes: no request has a body worth more than this.
    bodyLimit: 16 * 1024,
    http: { headersTimeout: HTTP_TIMEOUTS.headersMs, requestTimeout: HTTP_TIMEOUTS.requestMs, connectionsCheckingInterval: HTTP_TIMEOUTS.checkIntervalMs },
  });
  const limit = options.descriptorLimit ?? descriptorLimit();
  const cap = connectionCap(limit, options.poolMax);
  capConnections(app.server, cap, options.logger);
  options.logger.debug("HTTP connection cap", { maxConnections: cap, openFileLimit: limit, reservedDescriptors: RESERVED_DESCRIPTORS, databasePool: options.poolMax });
  return app;
}

/**
 * Holds the server to `cap` connections (node's `maxConnections`: beyond it a
 * new connection is closed as soon as it is accepted) and keeps room for new
 * clients: once only FREE_SLOTS are left, each new connection closes the
 * oldest connections that are not being answered (idle keep-alive ones, and
 * those that have not sent a whole request yet). A crowd of idle or slow
 * sockets can fill neither the server nor the process's descriptors, and a
 * health probe still gets in.
 */
export function capConnections(server: Server, cap: number, logger: Logger): void {
  server.maxConnections = cap;
  const threshold = cap - Math.max(1, Math.min(FREE_SLOTS, Math.floor(cap / 4)));
  /** Open connections, oldest first, with how many of their requests are being answered. */
  const open = new Map<Socket, { answering: number }>();
  let closedSinceLog = 0;
  let lastLogAt = Number.NEGATIVE_INFINITY;

  server.on("connection", (socket: Socket) => {
    open.set(socket, { answering: 0 });
    socket.once("close", () => open.delete(socket));
    let excess = open.size - threshold;
    if (excess <= 0) return;
    for (const [other, state] of open) {
      if (excess <= 0) break;
      if (other === socket || state.answering > 0) continue;
      open.delete(other);
      other.destroy();
      excess -= 1;
      closedSinceLog += 1;
    }
    const now = Date.now();
    if (now - lastLogAt >= EVICTION_LOG_INTERVAL_MS) {
      logger.warn("too many HTTP connections: closing the oldest idle ones", { open: open.size, maxConnections: cap, closed: closedSinceLog });
      lastLogAt = now;
      closedSinceLog = 0;
    }
  });
  server.on("request", (request, response) => {
    const state = open.get(request.socket);
    if (state === undefined) return;
    state.answering += 1;
    response.once("close", () => {
      state.answering -= 1;
    });
  });
}
