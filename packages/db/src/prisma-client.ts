import type { PGlite } from "@electric-sql/pglite";
import type pg from "pg";
import type { PrismaClient } from "./generated/prisma/client";

/**
 * Prisma's client, made on first use. Its modules and its first query cost
 * ~250 ms and ~30 MB here, and the bot and verify read and write through SQL
 * only: they never ask for it (the dashboard's trade list does). The modules
 * are required in `make`, not imported above, so that not asking costs nothing.
 */
export class LazyPrisma {
  private client: PrismaClient | undefined;

  constructor(private readonly make: () => PrismaClient) {}

  get(): PrismaClient {
    this.client ??= this.make();
    return this.client;
  }

  async disconnect(): Promise<void> {
    await this.client?.$disconnect();
  }
}

type ClientModule = typeof import("./generated/prisma/client");

export function serverPrisma(pool: pg.Pool): LazyPrisma {
  return new LazyPrisma(() => {
    const { PrismaClient: Client } = require("./generated/prisma/client") as ClientModule;
    const { PrismaPg } = require("@prisma/adapter-pg") as typeof import("@prisma/adapter-pg");
    return new Client({ adapter: new PrismaPg(pool) });
  });
}

export function embeddedPrisma(pglite: PGlite): LazyPrisma {
  return new LazyPrisma(() => {
    const { PrismaClient: Client } = require("./generated/prisma/client") as ClientModule;
    const { PrismaPGlite } = require("pglite-prisma-adapter") as typeof import("pglite-prisma-adapter");
    return new Client({ adapter: new PrismaPGlite(pglite) });
  });
}
