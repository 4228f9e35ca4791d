/**
 * The JSON the API sends, shared by the server (src/api.ts) and the page
 * (src/web): no imports, so the browser build type-checks without Node types.
 * Times are epoch milliseconds unless named *At (ISO strings).
 */

export type Freshness = "fresh" | "late" | "stale" | "missing";

export interface SeriesCell {
  state: Freshness;
  /** The oldest and newest stored candle; null without candles. */
  firstOpenTime: number | null;
  lastOpenTime: number | null;
  /** Candles missing before the forming one; null without candles. */
  behind: number | null;
  recentGaps: number;
  /** Missing ranges the history audit found anywhere in the series (ranges the exchange has no data for left out). */
  historyGaps: { count: number; missing: number; newest: GapRange[] };
  /** The history audit's "complete up to": every candle up to this one is stored or listed as a gap; null before its first audit. */
  completeUpTo: number | null;
}

/** Open times of the first and the last missing candle, and how many are missing. */
export interface GapRange {
  fromTime: number;
  toTime: number;
  missing: number;
}

export interface CoverageResponse {
  exchange: string;
  now: number;
  coinsSource: string;
  timeframes: string[];
  staleAfterPeriods: number;
  gapWindowCandles: number;
  totals: Record<Freshness, number>;
  /** Over every shown series: those with gaps in their history, the ranges and the candles missing. */
  historyGaps: { series: number; ranges: number; missing: number };
  coins: { symbol: string; series: Partial<Record<string, SeriesCell>> }[];
}

export interface ChartCandle {
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  isClosed: boolean;
}

export interface TradeMarker {
  /** Open time of the candle the entry or exit happened in. */
  time: number;
  kind: "entry" | "exit";
  side: "LONG" | "SHORT";
  price: number;
  /** null for the entry of a position still open. */
  tradeId: number | null;
  exitReason?: string;
  realizedPnl?: number;
}

export interface CandlesResponse {
  symbol: string;
  timeframe: string;
  candles: ChartCandle[];
  markers: TradeMarker[];
}

export interface EventJson {
  id: string;
  time: string;
  type: string;
  symbol: string | null;
  level: string;
  payload: unknown;
}

export interface EventsResponse {
  symbol: string;
  type: string;
  events: EventJson[];
}

export interface PositionJson {
  symbol: string;
  side: "LONG" | "SHORT";
  quantity: number;
  entryPrice: number;
  takeProfit: number | null;
  stopLoss: number | null;
  openedAt: string;
  lastPrice: number | null;
  lastPriceTime: number | null;
  /** At the last stored price, before fees. */
  unrealizedPnl: number | null;
}

export interface PositionsResponse {
  positions: PositionJson[];
  totalUnrealizedPnl: number;
}

export interface TradeJson {
  id: number;
  symbol: string;
  side: "LONG" | "SHORT";
  quantity: number;
  entryPrice: number;
  exitPrice: number;
  entryTime: string;
  exitTime: string;
  fees: number;
  realizedPnl: number;
  exitReason: string;
}

export interface TradesResponse {
  trades: TradeJson[];
}

export interface OrderJson {
  id: number;
  mode: "paper" | "live";
  symbol: string;
  side: "buy" | "sell";
  purpose: "entry" | "exit";
  status: "intent" | "sent" | "open" | "partially_filled" | "filled" | "canceled" | "rejected" | "expired" | "unknown";
  /** False while the order may still change (intent, sent, open, partially filled, unknown). */
  settled: boolean;
  clientOrderId: string;
  exchangeOrderId: string | null;
  exitReason: string | null;
  requestedAmount: number;
  /** Quote to spend, for a buy sent by cost. */
  requestedCost: number | null;
  referencePrice: number;
  filledAmount: number;
  averagePrice: number | null;
  filledCost: number;
  /** Every fee valued in the quote currency. */
  feeQuote: number;
  /** Each fee in the currency it was paid in. */
  fees: { currency: string; cost: number; quoteValue: number | null }[];
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface OrdersResponse {
  /** Newest first. */
  orders: OrderJson[];
}

export interface EquityResponse {
  series: { currency: string; points: { time: number; equity: number; total: number }[] }[];
}

export interface SystemResponse {
  mode: "bot" | "standalone";
  now: number;
  exchange: string;
  /** Which database, never where: no host, port or path. `downSince`: the dashboard's reads have failed to reach it since then. */
  database: { kind: "server" | "embedded"; downSince: string | null };
  bot: { startedAt: string; ticks: number; lastTickAt: string | null; lastFlushAt: string | null; pendingCandles: number; databaseDownSince: string | null } | null;
  /** What the database holds: null, like `orders`, `migrations` and `errors`, while it is down. */
  lastEventAt: string | null;
  /** Orders of the exchange the exchange could not be asked about, and others not final yet. */
  orders: { unknown: number; unsettled: number } | null;
  migrations: { upToDate: boolean; applied: number; pending: string[]; failed: string[]; modified: string[]; unknown: string[] } | null;
  errors: EventJson[] | null;
  /** The database's size and growth, read at most once a minute; null while it is down. */
  storage: StorageJson | null;
}

/** What a table takes and how fast it grows (verify's storage check reports the same). */
export interface TableStorageJson {
  table: string;
  /** Table, indexes and TOAST. */
  bytes: number;
  rows: number;
  /** False when `rows` is the catalogue's estimate or a page sample (counting would read the whole table). */
  rowsCounted: boolean;
  /** From the rows' timestamps over the last days; null when not measured (see `note`). */
  rowsPerDay: number | null;
  bytesPerDay: number | null;
  /** Why the growth is not measured, or why the table does not grow with time. */
  note: string | null;
}

export interface StorageJson {
  /** When the figures were read (they are kept for a minute). */
  measuredAt: string;
  databaseBytes: number;
  bytesPerDay: number;
  /** With DATABASE_STORAGE_BUDGET: how long it lasts at `bytesPerDay`; daysLeft null: not growing. low: under `lowDays` left. */
  budget: { bytes: number; leftBytes: number; daysLeft: number | null; state: "ok" | "low" | "exceeded"; lowDays: number } | null;
  tables: TableStorageJson[];
}

export interface ErrorResponse {
  error: string;
}
