import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { openTestDatabase } from "@candlekeep/db/testing";
import Fastify, { type FastifyInstance } from "fastify";
import { DashboardUnprotectedError, isLoopbackHost, isLoopbackHostHeader, presentedToken } from "./auth";
import { registerDashboard } from "./dashboard";
import { fillDatabase, fixtureSource } from "./testing/fixture";

const NOW = Date.UTC(2026, 10, 25, 12, 7);
const TOKEN = "test-token-0123456789abcdef";

/** A GET with exactly these headers (fetch would set Host itself): status and body. */
function rawGet(port: number, url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port, path: url, headers, setHost: false, agent: false }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
  });
}

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

  it("reads the credential exactly: `Bearer <token>` and nothing after it, or basic auth", () => {
    expect(presentedToken(`Bearer ${TOKEN}`)).toBe(TOKEN);
    expect(presentedToken(`bearer ${TOKEN}`)).toBe(TOKEN);
    for (const header of [`Bearer ${TOKEN} junk`, `Bearer  ${TOKEN}`, `Bearer\t${TOKEN}`, ` Bearer ${TOKEN}`, `Bearer ${TOKEN} `, "Bearer ", "Bearer", TOKEN, `Token ${TOKEN}`, `Basic ${TOKEN}`]) {
      expect({ header, token: presentedToken(header) }).toEqual({ header, token: undefined });
    }
    const basic = Buffer.from(`any:${TOKEN}`).toString("base64");
    expect(presentedToken(`Basic ${basic}`)).toBe(TOKEN);
    expect(presentedToken(`Basic ${basic} junk`)).toBeUndefined();
    expect(presentedToken(`Basic ${basic}!`)).toBeUndefined();
  });

  it("accepts only localhost, 127.0.0.1 and [::1] with the server's port as Host", () => {
    for (const host of ["127.0.0.1:8081", "localhost:8081", "LOCALHOST:8081", "[::1]:8081"]) expect(isLoopbackHostHeader(host, 8081)).toBe(true);
    for (const host of ["evil.example:8081", "127.0.0.1:8082", "127.0.0.1", "localhost", "127.0.0.1.nip.io:8081", "localhost.evil.example:8081", "127.0.0.2:8081", "[::1]", "::1:8081", "127.0.0.1:08081", "", "127.0.0.1:8081 "]) {
      expect({ host, ok: isLoopbackHostHeader(host, 8081) }).toEqual({ host, ok: false });
    }
    expect(isLoopbackHostHeader(undefined, 8081)).toBe(false);
    // Port 80 may be left out, as browsers do.
    expect(isLoopbackHostHeader("localhost", 80)).toBe(true);
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
      // The token followed by more words is not the token.
      expect((await fetch(`${base}/api/coverage`, { headers: { authorization: `Bearer ${TOKEN} junk` } })).status).toBe(401);
      expect((await fetch(`${base}/api/coverage`, { headers: { authorization: "Bearer x junk" } })).status).toBe(401);
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

  it("needs no token on loopback, and answers only to this machine's names there (no DNS rebinding)", async () => {
    const app = Fastify();
    app.get("/healthz", async () => ({ status: "ok" }));
    await registerDashboard(app, { source: fixtureSource(db, NOW), host: "127.0.0.1", token: undefined, webDir });
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    const port = Number(new URL(base).port);
    expect((await fetch(`${base}/api/system`)).status).toBe(200);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      expect({ host, status: (await rawGet(port, "/api/system", { host })).status }).toEqual({ host, status: 200 });
    }
    // A page on another site whose name now resolves to 127.0.0.1 sends its own name.
    for (const host of [`attacker.example:${port}`, "attacker.example", `127.0.0.1:${port + 1}`, `localhost.attacker.example:${port}`]) {
      for (const url of ["/", "/assets/app.js", "/api/positions"]) {
        const { status, body } = await rawGet(port, url, { host });
        expect({ host, url, status }).toEqual({ host, url, status: 421 });
        expect(JSON.parse(body)).toEqual({ error: expect.stringContaining("set DASHBOARD_TOKEN") });
      }
    }
    // Routes outside the dashboard (the bot's /healthz, probed under any name) are not its concern.
    expect((await rawGet(port, "/healthz", { host: "probe.internal" })).status).toBe(200);
    await app.close();
  });
});
