import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openTestDatabase } from "@candlekeep/db/testing";
import Fastify, { type FastifyInstance } from "fastify";
import { DashboardUnprotectedError, isLoopbackHost } from "./auth";
import { registerDashboard } from "./dashboard";
import { fillDatabase, fixtureSource } from "./testing/fixture";

const NOW = Date.UTC(2026, 10, 25, 12, 7);
const TOKEN = "test-token-0123456789abcdef";

describe("dashboard access", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let webDir: string;
  beforeAll(async () => {
    db = await openTestDatabase("server");
    await fillDatabase(db, NOW);
    // A stand-in page: these tests are about who may read it, not what it shows.
    webDir = fs.mkdtempSync(path.join(os.tmpdir(), "dashboard-web-"));
    for (const file of ["index.html", "app.js", "app.css"]) fs.writeFileSync(path.join(webDir, file), `/* ${file} */`);
  });
  afterAll(async () => {
    await db.close();
    fs.rmSync(webDir, { recursive: true, force: true });
  });

  it("tells loopback addresses from exposed ones", () => {
    for (const host of ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ["0.0.0.0", "::", "192.168.1.5", "dashboard.example.com", "10.0.0.1"]) expect(isLoopbackHost(host)).toBe(false);
  });

  it("refuses to start beyond loopback without a token, saying what to set", async () => {
    const app = Fastify();
    await expect(registerDashboard(app, { source: fixtureSource(db, NOW), host: "0.0.0.0", token: undefined, webDir })).rejects.toThrow(DashboardUnprotectedError);
    await expect(registerDashboard(app, { source: fixtureSource(db, NOW), host: "0.0.0.0", token: undefined, webDir })).rejects.toThrow(/Set DASHBOARD_TOKEN/);
    await app.close();
  });

  describe("with a token", () => {
    let app: FastifyInstance;
    let base: string;
    beforeAll(async () => {
      app = Fastify();
      app.get("/healthz", async () => ({ status: "ok" }));
      await registerDashboard(app, { source: fixtureSource(db, NOW), host: "0.0.0.0", token: TOKEN, webDir });
      base = await app.listen({ host: "127.0.0.1", port: 0 });
    });
    afterAll(async () => {
      await app.close();
    });

    it("answers 401 to requests without it, and asks a browser for it", async () => {
      for (const url of ["/", "/assets/app.js", "/api/coverage", "/api/coins/BTC-USDT/candles"]) {
        const response = await fetch(`${base}${url}`);
        expect(response.status).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
      }
      expect((await fetch(`${base}/api/coverage`, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
      expect((await fetch(`${base}/api/coverage`, { headers: { authorization: `Basic ${Buffer.from("admin:nope").toString("base64")}` } })).status).toBe(401);
    });

    it("serves the page and API with the token as a bearer token or basic-auth password", async () => {
      expect((await fetch(`${base}/api/coverage`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      const page = await fetch(`${base}/`, { headers: { authorization: `Basic ${Buffer.from(`any:${TOKEN}`).toString("base64")}` } });
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    });

    it("leaves routes outside the dashboard (the bot's /healthz) open", async () => {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    });
  });

  it("needs no token on loopback", async () => {
    const app = Fastify();
    await registerDashboard(app, { source: fixtureSource(db, NOW), host: "127.0.0.1", token: undefined, webDir });
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    expect((await fetch(`${base}/api/system`)).status).toBe(200);
    await app.close();
  });
});
