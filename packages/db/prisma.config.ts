import path from "node:path";
import { defineConfig } from "prisma/config";

// The schema and migrations live at the repository root (one source of truth);
// this package generates the client from them and is the only code that uses it.
// The url is read only by `prisma migrate deploy` (production release step);
// `prisma generate` does not need one.
export default defineConfig({
  schema: path.join(__dirname, "../../prisma/schema.prisma"),
  migrations: { path: path.join(__dirname, "../../prisma/migrations") },
  datasource: { url: process.env.DATABASE_URL ?? "" },
});
