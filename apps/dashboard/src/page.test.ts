import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { auditHistory, recordDecisionTraces, recordEvents, type DecisionTraceInput } from "@candlekeep/db";
import { openTestDatabase } from "@candlekeep/db/testing";
import Fastify, { type FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { buildWeb } from "./build-web";
import { registerDashboard } from "./dashboard";
import { COINS, EXCHANGE, PARTIAL_COIN, STALE_COIN, TIMEFRAMES, fillDatabase, fixtureSource } from "./testing/fixture";

/**
 * The page in a real browser: Debian's chromium driven by playwright-core (no
 * browser download). CI installs chromium in .ci/run.
 */

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.resolve(__dirname, "../test-artifacts");
// The machine notes' flags: without the background-networking ones chromium keeps dialling Google on a closed network.
// Playwright gives every launch a fresh, empty profile directory itself.
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

describe("the dashboard page in chromium", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let webDir: string;
  let browser: Browser;
  let filledAt: number;
  const servers: FastifyInstance[] = [];

  async function serve(source: ReturnType<typeof fixtureSource>): Promise<string> {
    const app = Fastify();
    servers.push(app);
    await registerDashboard(app, { source, host: "127.0.0.1", token: undefined, webDir });
    return app.listen({ host: "127.0.0.1", port: 0 });
  }

  /** The page at `url` once `ready` shows, the errors its scripts throw (now and later); `consoleErrors` collects what the console reports as errors (a failed request, say). */
  async function openWithProblems(url: string, options: { ready?: string; consoleErrors?: string[]; width?: number } = {}): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: options.width ?? 1400, height: 1000 } });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") options.consoleErrors?.push(message.text());
    });
    await page.goto(url);
    await page.waitForSelector(options.ready ?? "body[data-ready=true]", { timeout: 20_000 });
    expect(problems).toEqual([]);
    return { page, problems };
  }
  const open = async (url: string, options: { consoleErrors?: string[]; width?: number } = {}) => (await openWithProblems(url, options)).page;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
    db = await openTestDatabase("server");
    filledAt = Date.now();
    await fillDatabase(db, filledAt);
    webDir = fs.mkdtempSync(path.join(os.tmpdir(), "dashboard-web-"));
    await buildWeb(webDir);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    for (const app of servers) await app.close();
    await db?.close();
    if (webDir) fs.rmSync(webDir, { recursive: true, force: true });
  });

  it("shows every coin's freshness, a clicked coin's chart and decisions, and recent orders with the unsettled ones marked", async () => {
    const consoleErrors: string[] = [];
    const page = await open(await serve(fixtureSource(db, Date.now())), { consoleErrors });
    expect(await page.locator("#grid tr.coin th").allTextContents()).toEqual(COINS);
    const state = (symbol: string, tf: string) => page.locator(`#grid tr.coin[data-symbol="${symbol}"] td[data-timeframe="${tf}"]`).getAttribute("data-state");
    for (const tf of TIMEFRAMES) {
      expect(await state("BTC/USDT", tf)).toBe("fresh");
      expect(await state(STALE_COIN, tf)).toBe("stale");
    }
    expect(await state(PARTIAL_COIN, "1d")).toBe("missing");
    // 120 candles of 15m: the newest opened 119 × 15 min = 29¾ h after the first.
    const btc15m = page.locator(`#grid tr.coin[data-symbol="BTC/USDT"] td[data-timeframe="15m"]`);
    expect(await btc15m.textContent()).toBe("30h");
    expect(await btc15m.getAttribute("title")).toContain("(30h of history)");
    expect(await page.locator("#summary").textContent()).toContain("5 coins on sim: 15 fresh, 0 late, 4 stale, 1 missing");

    // The first coin is shown without a click: the chart is never empty while there is a coin.
    await page.waitForSelector("#chart[data-candles='120']");
    expect(await page.locator("#coin-title").textContent()).toBe("BTC/USDT");
    expect(new URL(page.url()).hash).toBe("#BTC-USDT&tf=15m");
    await page.locator(`#grid tr.coin[data-symbol="ETH/USDT"] th`).click();
    await page.waitForSelector("#events[data-symbol='ETH/USDT'] tbody tr");
    await page.locator(`#grid tr.coin[data-symbol="BTC/USDT"] th`).click();
    await page.waitForSelector("#chart[data-candles='120']");
    expect(await page.locator("#chart").getAttribute("data-markers")).toBe("2");
    expect(await page.locator("#chart canvas").count()).toBeGreaterThan(0);
    await page.waitForSelector("#events[data-symbol='BTC/USDT'] tbody tr");
    expect(await page.locator("#events tbody tr").count()).toBe(3);
    expect(await page.locator("#events tbody").textContent()).toContain("reason 0 for BTC/USDT");
    expect(await page.locator("#coin-title").textContent()).toBe("BTC/USDT");
    expect(await page.locator("#positions tbody").textContent()).toContain("ETH/USDT");
    expect(await page.locator("#trades tbody").textContent()).toContain("TAKE_PROFIT");
    expect(await page.locator("#errors tbody").textContent()).toContain("exchange timeout");
    expect(await page.locator("#system").textContent()).toContain("up to date");
    await page.waitForSelector("#orders tbody tr[data-status]");
    expect(await page.locator("#orders tbody tr").count()).toBe(5);
    expect(await page.locator("#orders tr.unknown").textContent()).toContain("ckada1");
    expect(await page.locator("#orders tr.unsettled").textContent()).toContain("cksol1");
    expect(await page.locator("#orders tr.unknown, #orders tr.unsettled").count()).toBe(2);
    expect(await page.locator("#orders tbody").textContent()).toContain("0.052 USDT");
    expect(await page.locator("#system").textContent()).toContain("1 unknown, 1 not settled");

    // Nothing the page loads fails: no /favicon.ico 404 (the icon is inline), no API error.
    expect(consoleErrors).toEqual([]);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true });
    await page.close();
  });

  it("shows the coin the URL's hash names (#BTC-USDT, #eth/usdt, #coin=…), also when the hash changes", async () => {
    const url = await serve(fixtureSource(db, Date.now()));
    const page = await open(`${url}#SOL-USDT`);
    await page.waitForSelector("#events[data-symbol='SOL/USDT'] tbody tr");
    expect(await page.locator("#coin-title").textContent()).toBe("SOL/USDT");
    expect(await page.locator("#grid tr.selected").getAttribute("data-symbol")).toBe("SOL/USDT");

    const goTo = (hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
    await goTo("#eth/usdt&tf=1h");
    await page.waitForSelector("#events[data-symbol='ETH/USDT'] tbody tr");
    expect(await page.locator("#coin-title").textContent()).toBe("ETH/USDT");
    expect(await page.locator("#timeframe").inputValue()).toBe("1h");
    await page.waitForSelector("#chart[data-candles='120']");

    await goTo("#coin=ADA%2FUSDT");
    await page.waitForSelector("#events[data-symbol='ADA/USDT'] tbody tr");
    expect(new URL(page.url()).hash).toBe("#ADA-USDT&tf=1h");

    // A coin the dashboard does not track changes nothing.
    await goTo("#XYZ-USDT");
    await page.waitForTimeout(300);
    expect(await page.locator("#coin-title").textContent()).toBe("ADA/USDT");
    await page.close();

    const fresh = await open(`${url}#BTC%2FUSDT&tf=4h`);
    await fresh.waitForSelector("#events[data-symbol='BTC/USDT'] tbody tr");
    expect(await fresh.locator("#timeframe").inputValue()).toBe("4h");
    await fresh.close();
  });

  it("shows every column of the positions, trades, orders and decisions at 1,400 px, and scrolls a table sideways when the window is narrower", async () => {
    const url = await serve(fixtureSource(db, Date.now()));
    const TABLES = ["positions", "trades", "orders", "events", "errors"];
    /** Tables whose last column ends beyond their panel's visible box. */
    const cutOff = async (page: Page) => {
      const cut: string[] = [];
      for (const id of TABLES) {
        const last = await page.locator(`#${id} thead th`).last().boundingBox();
        const panel = await page.locator(`section:has(#${id})`).boundingBox();
        if (!last || !panel || last.x + last.width > panel.x + panel.width + 0.5) cut.push(id);
      }
      return cut;
    };
    const wide = await open(url);
    await wide.waitForSelector("#positions tbody tr td:nth-child(8)");
    await wide.waitForSelector("#trades tbody tr td:nth-child(8)");
    expect(await cutOff(wide)).toEqual([]);
    await wide.close();

    const narrow = await open(url, { width: 1000 });
    await narrow.waitForSelector("#trades tbody tr td:nth-child(8)");
    const scrolling = await narrow.evaluate(`${JSON.stringify(TABLES)}.map((id) => { const box = document.getElementById(id).parentElement; return [id, box.className, getComputedStyle(box).overflowX]; })`);
    expect(scrolling).toEqual(TABLES.map((id) => [id, "table-scroll", "auto"]));
    await narrow.close();
  });

  it("renders 500 coins once and updates their cells in place on the next poll", async () => {
    const many = [...COINS, ...Array.from({ length: 495 }, (_, i) => `C${i}/USDT`)];
    const page = await open(await serve(fixtureSource(db, Date.now(), { coins: () => Promise.resolve({ symbols: many, source: "500 test coins" }) })));
    expect(await page.locator("#grid tr.coin").count()).toBe(500);
    expect(await page.locator("#grid td[data-state=missing]").count()).toBe(495 * 4 + 1);
    // Tag a cell, wait for the next poll: the same element must still be there (no re-render).
    await page.locator("#updated", { hasText: "updated" }).waitFor();
    await page.locator(`#grid tr.coin[data-symbol="C7/USDT"] td[data-timeframe="1h"]`).evaluate((cell) => cell.setAttribute("data-tagged", "yes"));
    const before = (await page.locator("#updated").textContent()) ?? "";
    await page.locator("#updated", { hasNotText: before }).waitFor({ timeout: 15_000 });
    expect(await page.locator("#grid td[data-tagged=yes]").count()).toBe(1);
    expect(await page.locator("#grid tr.coin").count()).toBe(500);
    await page.close();
  });

  it("shows any stored payload as text: odd decision traces and errors break nothing and inject no HTML", async () => {
    const now = Date.now();
    const injection = `<img src="x" onerror="document.body.dataset.injected='yes'">`;
    const traces: DecisionTraceInput[] = [
      { exchange: EXCHANGE, symbol: "SOL/USDT", time: new Date(now + 60_000), payload: { action: "NO_SIGNAL", price: 101, reasons: [{ toString: "x" }, injection, null, 7, ["nested"]] } },
      { exchange: EXCHANGE, symbol: "SOL/USDT", time: new Date(now + 120_000), payload: { action: { toString: "x" }, price: "NaN", reasons: { valueOf: 1 } } },
      { exchange: EXCHANGE, symbol: "SOL/USDT", time: new Date(now + 180_000), payload: `<b>${injection}</b>` },
      { exchange: EXCHANGE, symbol: "SOL/USDT", time: new Date(now + 240_000), payload: [1, { toString: "x" }] },
      // Another exchange's bot: not this page's.
      { exchange: "binance", symbol: "SOL/USDT", time: new Date(now + 300_000), payload: { action: "BUY", price: 102, reasons: ["binance's bot"] } },
    ];
    expect(await recordDecisionTraces(db, traces)).toBe(0);
    expect(
      await recordEvents(db, [
        { type: "ERROR", symbol: "SOL/USDT", level: "error", time: new Date(now + 60_000), payload: { message: { toString: "x" }, detail: injection } },
        { type: "ERROR", symbol: null, level: "error", time: new Date(now + 120_000), payload: { error: injection } },
      ]),
    ).toBe(0);
    const { page, problems } = await openWithProblems(await serve(fixtureSource(db, now)));
    await page.locator(`#grid tr.coin[data-symbol="SOL/USDT"] th`).click();
    await page.waitForSelector("#events[data-symbol='SOL/USDT'] tbody tr");
    // Wait for a whole poll after the click: a throwing render would show up as a page error.
    const before = (await page.locator("#updated").textContent()) ?? "";
    await page.locator("#updated", { hasNotText: before }).waitFor({ timeout: 15_000 });
    expect(problems).toEqual([]);
    expect(await page.locator("#updated").textContent()).toMatch(/^updated /);
    const events = (await page.locator("#events tbody").textContent()) ?? "";
    expect(events).toContain('{"toString":"x"}; <img src="x" onerror=');
    expect(events).toContain('null; 7; ["nested"]');
    expect(events).toContain(`<b>${injection}</b>`);
    expect(events).toContain('[1,{"toString":"x"}]');
    expect(events).not.toContain("binance's bot");
    // The 3 fixture traces and the 4 odd ones, all of the page's exchange.
    expect(await page.locator("#events tbody tr").count()).toBe(7);
    const errors = (await page.locator("#errors tbody").textContent()) ?? "";
    expect(errors).toContain('{"toString":"x"}');
    expect(errors).toContain(injection);
    expect(await page.locator("#events img, #errors img, #events b").count()).toBe(0);
    expect(await page.locator("body").getAttribute("data-injected")).toBeNull();
    await page.close();
  });

  it("shows the database's size and growth, each table's on hover, and a storage budget used up in red", async () => {
    const page = await open(await serve(fixtureSource(db, filledAt, { storageBudgetBytes: 1024 * 1024 })));
    const size = page.locator("#system dt:text-is('database size') + dd");
    const budget = page.locator("#system dt:text-is('storage budget') + dd");
    await budget.waitFor();
    expect(await size.textContent()).toMatch(/^\d+(\.\d)? MB, growing ~\d+(\.\d)? (B|kB|MB)\/day$/);
    const tables = ((await size.getAttribute("title")) ?? "").split("\n");
    expect(tables.map((line) => line.split(":")[0])).toEqual(["candles", "decision_traces", "system_events", "trades", "positions", "orders", "account_state", "series_audit", "candle_gaps"]);
    expect(tables[0]).toMatch(/^candles: \d+ kB, 2\d{3} rows, \+\d+ rows\/day \(~\d+ kB\/day\)$/);
    expect(tables[4]).toMatch(/^positions: \d+ kB, 1 rows, growth: one row per open position$/);
    expect(await budget.textContent()).toMatch(/^past the 1 MB budget by \d+(\.\d)? MB$/);
    expect(await budget.getAttribute("class")).toBe("bad");
    await page.close();
  });

  it("keeps answering during a database outage: the system panel says since when, other panels say why they are not updated", async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5999"), { code: "ECONNREFUSED" });
    const { page, problems } = await openWithProblems(await serve(fixtureSource(db, Date.now(), { db: () => Promise.reject(refused) })), { ready: "#system[data-database-down=true]" });
    const system = (await page.locator("#system").textContent()) ?? "";
    expect(system).toMatch(/database\s*server: unreachable since \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(system).toContain("unknown (database unreachable)");
    await page.locator("#updated", { hasText: "update failed" }).waitFor();
    expect(await page.locator("#updated").textContent()).toMatch(/503 database unreachable since/);
    expect(await page.locator("body").textContent()).not.toMatch(/5999|ECONNREFUSED|127\.0\.0\.1/);
    expect(problems).toEqual([]);
    await page.close();
  });
  it("shows a series' gaps from the history audit on hover, marked † in its cell, and the count in the summary", async () => {
    // SOL/USDT 15m loses three candles and one, before the recent window, and the history audit records them.
    const quarterAgo = (ago: number) => alignToTimeframe(filledAt, "15m") - ago * TIMEFRAME_MS["15m"];
    await db.sql.query("DELETE FROM candles WHERE symbol = 'SOL/USDT' AND timeframe = '15m' AND open_time = ANY($1::timestamptz[])", [[110, 109, 108, 100].map((ago) => new Date(quarterAgo(ago)))]);
    await auditHistory(db, { exchange: "sim" });
    const page = await open(await serve(fixtureSource(db, Date.now())));
    const cell = page.locator(`#grid tr.coin[data-symbol="SOL/USDT"] td[data-timeframe="15m"]`);
    expect(await cell.textContent()).toBe("30h†");
    const utc = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
    expect((await cell.getAttribute("title"))?.split("\n").slice(3)).toEqual([
      `history complete up to ${utc(quarterAgo(1))} UTC`,
      "2 gaps in its history (4 candles missing):",
      `  ${utc(quarterAgo(110))} – ${utc(quarterAgo(108))} UTC: 3 missing`,
      `  ${utc(quarterAgo(100))} – ${utc(quarterAgo(100))} UTC: 1 missing`,
    ]);
    expect(await page.locator(`#grid tr.coin[data-symbol="SOL/USDT"] td[data-timeframe="1h"]`).getAttribute("title")).toContain("no gaps in its history");
    expect(await page.locator("#summary").textContent()).toContain("; 1 series with gaps in their history (2 ranges, 4 candles missing)");
    await page.close();
  });
});
