import {
  CandlestickSeries,
  LineSeries,
  createChart,
  createSeriesMarkers,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import type {
  CandlesResponse,
  CoverageResponse,
  EquityResponse,
  EventJson,
  EventsResponse,
  OrderJson,
  OrdersResponse,
  PositionsResponse,
  SeriesCell,
  StorageJson,
  SystemResponse,
  TradesResponse,
} from "../api-types";

/**
 * The dashboard page: polls the JSON API and updates the DOM in place. The grid
 * is built once and its cells are only touched when their state changes, so
 * hundreds of coins cost a few thousand string comparisons per poll, not a re-render.
 */

const POLL_MS = 5000;
const CHART_CANDLES = 300;

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`page is missing #${id}`);
  return found;
}

const ui = {
  summary: element("summary", HTMLElement),
  updated: element("updated", HTMLElement),
  coverageSource: element("coverage-source", HTMLElement),
  grid: element("grid", HTMLTableElement),
  coinTitle: element("coin-title", HTMLElement),
  timeframe: element("timeframe", HTMLSelectElement),
  chart: element("chart", HTMLDivElement),
  events: element("events", HTMLTableElement),
  positions: element("positions", HTMLTableElement),
  upnl: element("upnl", HTMLElement),
  trades: element("trades", HTMLTableElement),
  orders: element("orders", HTMLTableElement),
  ordersNote: element("orders-note", HTMLElement),
  equity: element("equity", HTMLDivElement),
  system: element("system", HTMLElement),
  errors: element("errors", HTMLTableElement),
};

class HttpError extends Error {}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) {
    const body: unknown = await response.json().catch(() => null);
    const message = typeof body === "object" && body !== null && "error" in body && typeof body.error === "string" ? body.error : response.statusText;
    throw new HttpError(`${url}: ${response.status} ${message}`);
  }
  const body: T = await response.json();
  return body;
}

// ---- formatting ----------------------------------------------------------

/** "2026-11-25 12:07"; "—" for null or anything that is not a time. */
function utc(value: number | string | null): string {
  const time = value === null ? Number.NaN : new Date(value).getTime();
  return Number.isNaN(time) ? "—" : new Date(time).toISOString().slice(0, 16).replace("T", " ");
}

/**
 * Any stored value as plain text, whatever its shape: a string as it is, anything
 * else as JSON. Never throws (String() does, on `{"toString": "x"}`); the result
 * only ever goes into textContent or an attribute, never into HTML.
 */
function asText(value: unknown, indent?: number): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === undefined) return "—";
  try {
    return JSON.stringify(value, null, indent) ?? "—";
  } catch {
    return "(unreadable value)";
  }
}

/** How far back a series' stored candles reach, from its first to its newest open time: "45m", "12h", "300d". */
function span(cell: SeriesCell): string {
  if (cell.firstOpenTime === null || cell.lastOpenTime === null) return "—";
  const minutes = Math.round((cell.lastOpenTime - cell.firstOpenTime) / 60_000);
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)}h`;
  return `${Math.round(minutes / 1440)}d`;
}
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);
const num = (value: number | null, digits = 4) => (isNumber(value) ? Number(value.toPrecision(digits + 2)).toLocaleString("en-US", { maximumFractionDigits: 8 }) : "—");
const money = (value: number | null) => (isNumber(value) ? value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : "—");
/** Bytes as verify prints them: "512 B", "40 kB", "7.5 MB", "3.2 GB" (binary units). */
function bytes(value: number): string {
  const mib = value / 1024 ** 2;
  if (value < 1024) return `${Math.round(value)} B`;
  if (mib < 1) return `${Math.ceil(value / 1024)} kB`;
  if (mib < 1024) return `${mib >= 10 ? Math.round(mib) : Number(mib.toFixed(1))} MB`;
  return `${(mib / 1024).toFixed(1)} GB`;
}
const ago = (iso: string | null, now: number) => (iso === null ? "never" : `${utc(iso)} UTC (${Math.max(0, Math.round((now - Date.parse(iso)) / 1000))} s ago)`);

function cellsRow(values: readonly (string | { text: string; className: string })[]): HTMLTableRowElement {
  const row = document.createElement("tr");
  for (const value of values) {
    const td = document.createElement("td");
    if (typeof value === "string") td.textContent = value;
    else {
      td.textContent = value.text;
      td.className = value.className;
    }
    row.append(td);
  }
  return row;
}

/** One row per item; an item that cannot be shown becomes a row saying so instead of breaking the table. */
function rowsOf<T>(items: readonly T[], row: (item: T) => HTMLTableRowElement): HTMLTableRowElement[] {
  return items.map((item) => {
    try {
      return row(item);
    } catch (error) {
      const fallback = cellsRow([`(unreadable row: ${error instanceof Error ? error.message : "unknown error"})`]);
      fallback.title = asText(item, 2);
      return fallback;
    }
  });
}

function fillBody(table: HTMLTableElement, rows: HTMLTableRowElement[], empty: string): void {
  const body = table.tBodies[0] ?? table.createTBody();
  if (rows.length === 0) {
    const row = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = table.tHead?.rows[0]?.cells.length ?? 1;
    td.className = "muted";
    td.textContent = empty;
    row.append(td);
    rows = [row];
  }
  body.replaceChildren(...rows);
}

const signed = (value: number | null) => ({ text: money(value), className: value === null || value === 0 ? "" : value > 0 ? "pos" : "neg" });

// ---- coverage grid -------------------------------------------------------

const cells = new Map<string, HTMLTableCellElement>();
let gridShape = "";
let selected: string | undefined;

function buildGrid(coverage: CoverageResponse): void {
  cells.clear();
  const head = document.createElement("tr");
  head.append(Object.assign(document.createElement("th"), { textContent: "coin" }));
  for (const tf of coverage.timeframes) head.append(Object.assign(document.createElement("th"), { textContent: tf }));
  ui.grid.tHead?.replaceChildren(head);
  const fragment = document.createDocumentFragment();
  for (const coin of coverage.coins) {
    const row = document.createElement("tr");
    row.className = "coin";
    row.dataset.symbol = coin.symbol;
    const name = document.createElement("th");
    name.className = "sym";
    name.textContent = coin.symbol;
    row.append(name);
    for (const tf of coverage.timeframes) {
      const cell = document.createElement("td");
      cell.className = "cell";
      cell.dataset.timeframe = tf;
      cells.set(`${coin.symbol}|${tf}`, cell);
      row.append(cell);
    }
    fragment.append(row);
  }
  (ui.grid.tBodies[0] ?? ui.grid.createTBody()).replaceChildren(fragment);
  markSelected();
}

/** What the history audit says of a series: how far it is complete, its gaps and their newest ranges. */
function describeHistory(cell: SeriesCell): string[] {
  if (cell.completeUpTo === null) return ["history not audited yet (verify's history check audits it)"];
  const { count, missing, newest } = cell.historyGaps;
  const lines = [`history complete up to ${utc(cell.completeUpTo)} UTC`];
  if (count === 0) return [...lines, "no gaps in its history"];
  lines.push(`${count} gap${count === 1 ? "" : "s"} in its history (${missing} candle${missing === 1 ? "" : "s"} missing)${count > newest.length ? `, the newest ${newest.length}:` : ":"}`);
  for (const gap of newest) lines.push(`  ${utc(gap.fromTime)} – ${utc(gap.toTime)} UTC: ${gap.missing} missing`);
  return lines;
}

function describeCell(symbol: string, tf: string, cell: SeriesCell | undefined, coverage: CoverageResponse): string {
  if (cell === undefined || cell.state === "missing") return `${symbol} ${tf}: missing — no candles stored`;
  const behind = cell.behind === null ? "" : `, ${cell.behind} candle${cell.behind === 1 ? "" : "s"} behind`;
  return [
    `${symbol} ${tf}: ${cell.state}${behind} (stale after ${coverage.staleAfterPeriods})`,
    `stored from ${utc(cell.firstOpenTime)} to ${utc(cell.lastOpenTime)} UTC (${span(cell)} of history)`,
    `${cell.recentGaps} missing in the last ${coverage.gapWindowCandles} candles`,
    ...describeHistory(cell),
  ].join("\n");
}

function renderGrid(coverage: CoverageResponse): void {
  const shape = `${coverage.timeframes.join(",")}|${coverage.coins.map((c) => c.symbol).join(",")}`;
  if (shape !== gridShape) {
    buildGrid(coverage);
    gridShape = shape;
  }
  for (const coin of coverage.coins) {
    for (const tf of coverage.timeframes) {
      const cell = cells.get(`${coin.symbol}|${tf}`);
      if (cell === undefined) continue;
      const series = coin.series[tf];
      const state = series?.state ?? "missing";
      const marks = series === undefined ? "" : (series.recentGaps > 0 ? "*" : "") + (series.historyGaps.count > 0 ? "†" : "");
      const text = series === undefined || series.lastOpenTime === null ? "—" : span(series) + marks;
      const title = describeCell(coin.symbol, tf, series, coverage);
      // Touch the DOM only for what changed: most cells stay as they are between polls.
      if (cell.dataset.state !== state) {
        cell.dataset.state = state;
        cell.className = `cell ${state}`;
      }
      if (cell.textContent !== text) cell.textContent = text;
      if (cell.title !== title) cell.title = title;
    }
  }
  const t = coverage.totals;
  const h = coverage.historyGaps;
  const history = h.series === 0 ? "" : `; ${h.series} series with gaps in their history (${h.ranges} ranges, ${h.missing} candles missing)`;
  ui.summary.textContent = `${coverage.coins.length} coins on ${coverage.exchange}: ${t.fresh} fresh, ${t.late} late, ${t.stale} stale, ${t.missing} missing series${history}`;
  ui.coverageSource.textContent = `coins: ${coverage.coinsSource}. each cell: how far back its candles reach; * = gaps in the last ${coverage.gapWindowCandles} candles; † = gaps in its history, as the last history audit found them; hover a cell for details.`;
}

function markSelected(): void {
  for (const row of ui.grid.querySelectorAll<HTMLTableRowElement>("tr.coin")) row.classList.toggle("selected", row.dataset.symbol === selected);
}

ui.grid.addEventListener("click", (event) => {
  const target = event.target;
  const row = target instanceof Element ? target.closest<HTMLTableRowElement>("tr.coin") : null;
  const symbol = row?.dataset.symbol;
  if (symbol === undefined) return;
  const tf = target instanceof HTMLElement ? target.dataset.timeframe : undefined;
  if (tf !== undefined) ui.timeframe.value = tf;
  selectCoin(symbol);
});

// ---- coin detail ---------------------------------------------------------

const chartTheme = { layout: { background: { color: "#1a1f26" }, textColor: "#c9d1d9" }, grid: { vertLines: { color: "#232a33" }, horzLines: { color: "#232a33" } }, autoSize: true };

let coinChart: { chart: IChartApi; candles: ISeriesApi<"Candlestick">; markers: ISeriesMarkersPluginApi<Time> } | undefined;
let fitNext = true;

function ensureCoinChart() {
  if (coinChart === undefined) {
    const chart = createChart(ui.chart, { ...chartTheme, timeScale: { timeVisible: true, secondsVisible: false } });
    const candles = chart.addSeries(CandlestickSeries, { upColor: "#2e9d5b", downColor: "#d64545", borderVisible: false, wickUpColor: "#2e9d5b", wickDownColor: "#d64545" });
    coinChart = { chart, candles, markers: createSeriesMarkers(candles, []) };
  }
  return coinChart;
}

const seconds = (ms: number) => (ms / 1000) as UTCTimestamp;

function renderCandles(data: CandlesResponse): void {
  const chart = ensureCoinChart();
  chart.candles.setData(data.candles.map((c) => ({ time: seconds(c.openTime), open: c.open, high: c.high, low: c.low, close: c.close })));
  const markers: SeriesMarker<Time>[] = data.markers.map((m) => {
    // Buying (a long's entry, a short's exit) is drawn below the bar pointing up; selling above, pointing down.
    const buying = (m.kind === "entry") === (m.side === "LONG");
    const label = m.kind === "entry" ? `${m.side === "LONG" ? "BUY" : "SELL"} ${num(m.price)}` : `EXIT ${m.exitReason ?? ""} ${m.realizedPnl === undefined ? "" : money(m.realizedPnl)}`.trim();
    return { time: seconds(m.time), position: buying ? "belowBar" : "aboveBar", shape: buying ? "arrowUp" : "arrowDown", color: m.kind === "entry" ? "#4aa3ff" : "#f0a030", text: label };
  });
  chart.markers.setMarkers(markers);
  ui.chart.dataset.candles = String(data.candles.length);
  ui.chart.dataset.markers = String(markers.length);
  if (fitNext) {
    chart.chart.timeScale().fitContent();
    fitNext = false;
  }
}

function payloadField(payload: unknown, key: string): unknown {
  return typeof payload === "object" && payload !== null && key in payload ? (payload as Record<string, unknown>)[key] : undefined;
}

/** A decision trace as the bot writes it (action, price, reasons), or whatever else its payload holds, as text. */
function eventRow(event: EventJson): HTMLTableRowElement {
  const action = payloadField(event.payload, "action");
  const price = payloadField(event.payload, "price");
  const reasons = payloadField(event.payload, "reasons");
  const row = cellsRow([
    utc(event.time),
    asText(action),
    isNumber(price) ? num(price) : asText(price),
    { text: Array.isArray(reasons) ? reasons.map((r) => asText(r)).join("; ") : asText(event.payload), className: "reasons" },
  ]);
  row.title = asText(event.payload, 2);
  return row;
}

async function refreshCoin(): Promise<void> {
  if (selected === undefined) return;
  const symbol = encodeURIComponent(selected);
  const tf = encodeURIComponent(ui.timeframe.value);
  const [candles, events] = await Promise.all([
    getJson<CandlesResponse>(`/api/coins/${symbol}/candles?timeframe=${tf}&limit=${CHART_CANDLES}`),
    getJson<EventsResponse>(`/api/coins/${symbol}/events?type=DECISION_TRACE&limit=20`),
  ]);
  if (candles.symbol !== selected) return; // the user picked another coin meanwhile
  renderCandles(candles);
  fillBody(ui.events, rowsOf(events.events, eventRow), "no decisions recorded for this coin");
  ui.events.dataset.symbol = events.symbol;
}

function selectCoin(symbol: string): void {
  selected = symbol;
  fitNext = true;
  ui.coinTitle.textContent = symbol;
  // The coin as the API spells it in a path (BTC-USDT): a link to the page can be typed by hand.
  history.replaceState(null, "", `#${symbol.replace("/", "-")}&tf=${encodeURIComponent(ui.timeframe.value)}`);
  markSelected();
  refreshCoin().catch(showError);
}

ui.timeframe.addEventListener("change", () => {
  if (selected !== undefined) selectCoin(selected);
});

// ---- positions, trades, equity, system ---------------------------------

function renderPositions(data: PositionsResponse): void {
  ui.upnl.textContent = data.positions.length === 0 ? "" : `unrealised ${money(data.totalUnrealizedPnl)} (before fees)`;
  fillBody(
    ui.positions,
    rowsOf(data.positions, (p) => cellsRow([p.symbol, p.side, num(p.quantity), num(p.entryPrice), num(p.takeProfit), num(p.stopLoss), num(p.lastPrice), signed(p.unrealizedPnl)])),
    "no open positions",
  );
}

function renderTrades(data: TradesResponse): void {
  fillBody(
    ui.trades,
    rowsOf(data.trades, (t) => cellsRow([utc(t.exitTime), t.symbol, t.side, num(t.quantity), num(t.entryPrice), num(t.exitPrice), t.exitReason, signed(t.realizedPnl)])),
    "no trades yet",
  );
}

/** Each fee in its own currency: "0.05 USDT", "0.0001 BNB + 0.02 USDT". */
const fees = (order: OrderJson) => (order.fees.length === 0 ? (order.feeQuote === 0 ? "—" : `${num(order.feeQuote)} (quote)`) : order.fees.map((f) => `${num(f.cost)} ${f.currency}`).join(" + "));

function orderRow(order: OrderJson): HTMLTableRowElement {
  const row = cellsRow([
    utc(order.createdAt),
    order.symbol,
    order.side,
    order.purpose,
    order.status.replace("_", " "),
    num(order.requestedAmount),
    num(order.filledAmount),
    num(order.averagePrice),
    fees(order),
    order.clientOrderId,
  ]);
  // Not settled: the bot is still waiting on the exchange (or cannot ask it: unknown).
  if (!order.settled) row.className = order.status === "unknown" ? "unknown" : "unsettled";
  row.dataset.status = order.status;
  row.title = [order.exchangeOrderId === null ? "no exchange id yet" : `exchange id ${order.exchangeOrderId}`, `updated ${utc(order.updatedAt)} UTC`, order.error ?? ""].filter(Boolean).join("\n");
  return row;
}

function renderOrders(data: OrdersResponse): void {
  const open = data.orders.filter((o) => !o.settled).length;
  ui.ordersNote.textContent = open === 0 ? "" : `${open} not settled`;
  fillBody(ui.orders, rowsOf(data.orders, orderRow), "no orders yet");
}

let equityChart: ISeriesApi<"Line"> | undefined;
let equityFit: (() => void) | undefined;

function renderEquity(data: EquityResponse): void {
  const series = data.series[0];
  if (series === undefined) {
    ui.equity.textContent = "no account snapshots yet";
    return;
  }
  if (equityChart === undefined) {
    ui.equity.textContent = "";
    const chart = createChart(ui.equity, { ...chartTheme, timeScale: { timeVisible: true } });
    equityChart = chart.addSeries(LineSeries, { color: "#4aa3ff", lineWidth: 2, title: `equity ${series.currency}` });
    equityFit = () => chart.timeScale().fitContent();
  }
  // Two snapshots in the same second would break the chart's strictly increasing times.
  const points = new Map<number, number>();
  for (const p of series.points) points.set(Math.floor(p.time / 1000), p.equity);
  equityChart.setData([...points].map(([time, value]) => ({ time: time as UTCTimestamp, value })));
  // Fit the whole curve once; later polls keep whatever range the user zoomed to.
  equityFit?.();
  equityFit = undefined;
}

/** One line per table for the size row's tooltip: "candles: 1.2 GB, 4800000 rows, +1920 rows/day (~46 kB/day)". */
function tableLines(storage: StorageJson): string {
  return storage.tables
    .map((t) => {
      const growth = t.rowsPerDay === null || t.bytesPerDay === null ? `growth: ${t.note ?? "not measured"}` : `+${num(t.rowsPerDay, 2)} rows/day (~${bytes(t.bytesPerDay)}/day)`;
      return `${t.table}: ${bytes(t.bytes)}, ${t.rowsCounted ? "" : "~"}${t.rows} rows, ${growth}`;
    })
    .join("\n");
}

/** How long DATABASE_STORAGE_BUDGET lasts, and whether that is worth a look (past it, or under its low mark). */
function budgetText(storage: StorageJson): [string, boolean] {
  const budget = storage.budget;
  if (budget === null) return ["none set (DATABASE_STORAGE_BUDGET, e.g. 10GB)", false];
  if (budget.state === "exceeded") return [`past the ${bytes(budget.bytes)} budget by ${bytes(-budget.leftBytes)}`, true];
  if (budget.daysLeft === null) return [`${bytes(budget.leftBytes)} left of ${bytes(budget.bytes)}; not growing`, false];
  const days = budget.daysLeft >= 10 ? Math.floor(budget.daysLeft) : budget.daysLeft.toFixed(1);
  return [`~${days} days left of ${bytes(budget.bytes)}${budget.state === "low" ? ` (under ${budget.lowDays})` : ""}`, budget.state === "low"];
}

function renderSystem(data: SystemResponse): void {
  const down = data.database.downSince;
  const rows: [string, string, boolean?, string?][] = [
    ["mode", data.mode === "bot" ? "served by the running bot" : "standalone (what the database knows)"],
    ["database", down === null ? `${data.database.kind}: answering` : `${data.database.kind}: unreachable since ${ago(down, data.now)}`, down !== null],
  ];
  if (data.bot) {
    rows.push(
      ["bot started", ago(data.bot.startedAt, data.now)],
      ["ticks", String(data.bot.ticks)],
      ["last tick", ago(data.bot.lastTickAt, data.now)],
      ["last flush", ago(data.bot.lastFlushAt, data.now)],
      ["pending candles", String(data.bot.pendingCandles), data.bot.pendingCandles > 0],
      ["bot's writes failing since", data.bot.databaseDownSince === null ? "—" : ago(data.bot.databaseDownSince, data.now), data.bot.databaseDownSince !== null],
    );
  }
  // What the database holds is unknown while it is down: said so rather than shown as zero.
  const unknown = "unknown (database unreachable)";
  rows.push(["last event", down !== null ? unknown : ago(data.lastEventAt, data.now)]);
  rows.push(["orders", data.orders === null ? unknown : `${data.orders.unknown} unknown, ${data.orders.unsettled} not settled`, (data.orders?.unknown ?? 0) > 0]);
  const m = data.migrations;
  if (m === null) rows.push(["migrations", unknown]);
  else {
    const problems = [...m.pending.map((n) => `pending ${n}`), ...m.failed.map((n) => `failed ${n}`), ...m.modified.map((n) => `modified ${n}`)];
    rows.push(["migrations", m.upToDate ? `up to date (${m.applied} applied)` : problems.join(", "), !m.upToDate]);
  }
  const storage = data.storage;
  if (storage === null) rows.push(["database size", unknown]);
  else {
    rows.push(["database size", `${bytes(storage.databaseBytes)}, growing ~${bytes(storage.bytesPerDay)}/day`, false, tableLines(storage)]);
    const [text, bad] = budgetText(storage);
    rows.push(["storage budget", text, bad]);
  }
  const items: HTMLElement[] = [];
  for (const [label, value, bad, title] of rows) {
    items.push(Object.assign(document.createElement("dt"), { textContent: label }));
    items.push(Object.assign(document.createElement("dd"), { textContent: value, className: bad ? "bad" : "", title: title ?? "" }));
  }
  ui.system.replaceChildren(...items);
  ui.system.dataset.databaseDown = String(down !== null);
  // During an outage the last errors shown stay until the database answers again.
  if (data.errors === null) return;
  fillBody(
    ui.errors,
    rowsOf(data.errors, (e) => {
      const message = payloadField(e.payload, "message") ?? payloadField(e.payload, "error") ?? e.payload;
      const row = cellsRow([utc(e.time), e.symbol ?? "—", { text: asText(message), className: "reasons" }]);
      row.title = asText(e.payload, 2);
      return row;
    }),
    "no ERROR events",
  );
}

// ---- polling -------------------------------------------------------------

function showError(error: unknown): void {
  ui.updated.textContent = `update failed: ${error instanceof Error ? error.message : String(error)}`;
  ui.updated.classList.add("bad");
}

async function refresh(): Promise<void> {
  const steps: Promise<void>[] = [
    getJson<CoverageResponse>("/api/coverage").then((c) => {
      renderGrid(c);
      latestCoverage = c;
      if (ui.timeframe.options.length === 0) for (const tf of c.timeframes) ui.timeframe.append(new Option(tf, tf));
      // The chart is never empty while there is a coin to show: the hash's, else the first.
      if (selected === undefined) showHashedCoin(c);
      document.body.dataset.ready = "true";
    }),
    getJson<PositionsResponse>("/api/positions").then(renderPositions),
    getJson<TradesResponse>("/api/trades?limit=30").then(renderTrades),
    getJson<OrdersResponse>("/api/orders?limit=30").then(renderOrders),
    getJson<EquityResponse>("/api/equity?limit=2000").then(renderEquity),
    getJson<SystemResponse>("/api/system").then(renderSystem),
    refreshCoin(),
  ];
  const failed = (await Promise.allSettled(steps)).filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed[0] !== undefined) showError(failed[0].reason);
  else {
    ui.updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    ui.updated.classList.remove("bad");
  }
}

const decoded = (text: string) => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

/**
 * The coin and timeframe a URL's hash names: `#BTC-USDT`, `#btc/usdt` or `#BTC%2FUSDT` (the
 * API's spellings of a coin), with `&tf=1h` optionally; `#coin=BTC%2FUSDT&tf=1h` as well.
 */
function readHash(hash: string, coverage: CoverageResponse): { coin: string | undefined; tf: string | undefined } {
  let coin: string | undefined;
  let tf: string | undefined;
  for (const part of hash.replace(/^#/, "").split("&")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? "coin" : part.slice(0, eq);
    const value = decoded(eq < 0 ? part : part.slice(eq + 1)).trim();
    if (key === "coin" && value !== "") coin = value.toUpperCase().replace("-", "/");
    else if (key === "tf") tf = value;
  }
  return {
    coin: coverage.coins.find((c) => c.symbol === coin)?.symbol,
    tf: tf !== undefined && coverage.timeframes.includes(tf) ? tf : undefined,
  };
}

let latestCoverage: CoverageResponse | undefined;

/** Shows the coin the hash names; without one (or an unknown one) the selected coin stays, else the first. */
function showHashedCoin(coverage: CoverageResponse): void {
  const { coin, tf } = readHash(location.hash, coverage);
  const changedTf = tf !== undefined && tf !== ui.timeframe.value;
  if (tf !== undefined) ui.timeframe.value = tf;
  const next = coin ?? selected ?? coverage.coins[0]?.symbol;
  if (next !== undefined && (next !== selected || changedTf)) selectCoin(next);
}

window.addEventListener("hashchange", () => {
  if (latestCoverage !== undefined) showHashedCoin(latestCoverage);
});

// One request round at a time: a slow database must not pile up overlapping polls.
async function loop(): Promise<void> {
  if (!document.hidden) await refresh();
  setTimeout(() => void loop(), POLL_MS);
}

void loop();
