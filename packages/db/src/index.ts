// @candlekeep/db's public face: the only way into the database (connection, migrations, one module per table).
export { createDb, openDatabase, DEFAULT_POOL_MAX, DEFAULT_QUERY_TIMEOUT_MS, type Database, type SessionOptions, type DatabaseKind, type DbOptions, type LazyDatabase } from "./connect";
export { parseDatabaseUrl, redactDatabaseUrl, type DatabaseUrl, type SslMode } from "./url";
export { readReplicaSettings, readReplicaProblem, DATABASE_READ_URL } from "./read-replica";
export { replicaState, type ReplicaState } from "./inspect";
export { InvalidDatabaseUrlError, DatabaseUnreachableError, MigrationsPendingError, MigrationError, DiskFullError, EmbeddedEngineStoppedError, isWriteOutage } from "./errors";
export { EMBEDDED_MIN_FREE_BYTES, EMBEDDED_MIN_FREE_NEW_BYTES } from "./embedded";
export { diskSpace, formatBytes, type DiskSpace } from "./disk-space";
export { applyMigrations, assertNoPendingMigrations, migrationStatus, readMigrationFiles, DEFAULT_MIGRATIONS_DIR, type MigrationFile, type MigrationStatus } from "./migrate";
export { DEFAULT_RETRY, type RetryPolicy } from "./retry";
export type { SqlRunner, SqlResult } from "./sql";
export {
  saveCandles,
  validateCandles,
  candleProblem,
  candleValuesProblem,
  seriesProblem,
  recentCandles,
  latestCandlesPerSeries,
  latestSeriesCandles,
  type CandleInput,
  type StoredCandle,
  type StoredSeries,
  type RejectedCandle,
  type SaveCandlesResult,
} from "./candles";
export { writeCandleSeries, seriesCandleAt, CANDLE_CHUNK_ROWS, type SaveCandlesOptions, type SeriesColumns } from "./candle-write";
export { CandleMap, type CandleKeyFields } from "./candle-map";
export {
  savePosition,
  deletePosition,
  listOpenPositions,
  closePositionWithTrade,
  type PositionInput,
  type OpenPosition,
  type PositionSide,
  type ExitReason,
  type ClosePositionInput,
  type TradeRecord,
  type JsonObject,
} from "./positions";
export { listTrades, latestTradeEntries } from "./trades";
export {
  recordOrderIntent,
  applyEntryProgress,
  applyExitProgress,
  markOrder,
  listUnsettledOrders,
  countExitOrders,
  listOrders,
  countUnsettledOrders,
  countOrdersByMode,
  paperLedgerTotals,
  carryOverPositions,
  isFinalOrderStatus,
  isRestingStop,
  FINAL_ORDER_STATUSES,
  type OrderStatus,
  type OrderSide,
  type OrderPurpose,
  type TradingMode,
  type OrderFee,
  type OrderIntent,
  type OrderProgress,
  type LedgerOrder,
  type PaperLedgerTotals,
} from "./orders";
export { openPaperAccount, paperAccountStart, paperAccountEventKey, PAPER_ACCOUNT_EVENT, type PaperAccount, type PaperAccountStart } from "./paper-account";
export { positionBacking, newestFilledOrder, type PositionBacking } from "./books";
export { recordEvent, recordEvents, latestEvents, latestEventPerSymbol, eventPayloadJson, MAX_EVENT_PAYLOAD_BYTES, type EventInput, type EventLevel, type EventType, type StoredEvent } from "./events";
export {
  recordDecisionTraces,
  latestDecisionTraces,
  latestDecisionTracePerSymbol,
  newestDecisionTraceTime,
  DECISION_TRACE,
  type DecisionTraceInput,
  type StoredDecisionTrace,
} from "./decision-traces";
export { saveAccountState, accountHistory, type AccountSnapshot } from "./account";
export { candleCoverage, type SeriesCoverage, type CoverageQuery } from "./coverage";
export {
  auditHistory,
  listCandleGaps,
  markRangeUnavailable,
  forgetHistoryBefore,
  seriesAuditStates,
  InvalidHistoryRequestError,
  type CandleGap,
  type SeriesAuditState,
  type HistoryAuditResult,
  type SeriesSelection,
  type AuditHistoryOptions,
  type CandleRange,
} from "./history";
export { removeDecisionTraces, removeCandles, vacuumTable, RETENTION_BATCH_ROWS, type RetentionOptions, type RemovedRows, type RetentionTable } from "./retention";
export { serverInfo, tableColumns, enumTypes, embeddedDatabaseExists, type ServerInfo, type ColumnInfo } from "./inspect";
export {
  compareSchemaWithDatabase,
  parsePrismaSchema,
  readPrismaSchema,
  DEFAULT_SCHEMA_PATH,
  type SchemaComparison,
  type SchemaProblem,
  type SchemaProblemKind,
  type PrismaSchema,
  type PrismaModel,
  type PrismaField,
  type PrismaEnum,
  type NativeType,
} from "./schema-check";
export { roundTrip, ROUNDTRIP_EXCHANGE, ROUNDTRIP_KINDS, type RoundTripKind, type RoundTripResult } from "./roundtrip";
export { storedCandleSymbols, type StoredSymbol } from "./candle-symbols";
export { latestCandleTime } from "./latest-candle-time";
export { acquireBotLock, BotAlreadyRunningError, type BotLock, type BotLockOptions } from "./bot-lock";
export { trackedCoins, DEFAULT_TOP_COINS, type TrackedCoins } from "./tracked-coins";
export { tableStorageHealth, type TableStorageHealth, type IndexHealth } from "./storage-health";
export { databaseGrowth, tableGrowth, GROWTH_WINDOW_DAYS, type DatabaseGrowth, type TableGrowth, type TableGrowthSpec } from "./table-growth";
export { storageOutlook, STORAGE_LOW_DAYS, type StorageOutlook } from "./storage-outlook";
export { openPrismaClient, type PrismaClientOptions, type OpenPrismaClient } from "./open-prisma-client";
export type { PrismaClient } from "./generated/prisma/client";
