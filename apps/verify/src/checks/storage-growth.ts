import { databaseGrowth, formatBytes, GROWTH_WINDOW_DAYS, STORAGE_LOW_DAYS, storageOutlook, type DatabaseGrowth, type StorageOutlook, type TableGrowth } from "@candlekeep/db";
import type { CheckContext, CheckStatus } from "../check";

/**
 * The storage check's view of growth: each table's size, rows and growth per
 * day, the database's size, and with DATABASE_STORAGE_BUDGET the days left
 * at the current growth (a warning under STORAGE_LOW_DAYS, a failure once the
 * budget is used up).
 */

export interface GrowthReport {
  status: Exclude<CheckStatus, "skip">;
  /** One phrase for the check's summary. */
  summary: string;
  details: string[];
  data: Record<string, unknown>;
}

/** Bytes as people read them: "512 B", "40 kB", "7.5 MB", "3.2 GB". */
export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${Math.ceil(bytes / 1024)} kB`;
  return formatBytes(bytes);
}

/** A rate: whole numbers from 10 up, one decimal below ("240", "2.5", "0.1"). */
const rate = (value: number) => (value >= 10 ? String(Math.round(value)) : String(Number(value.toFixed(1))));
const days = (value: number) => (value >= 10 ? String(Math.floor(value)) : value.toFixed(1));
const dayCount = (value: number) => {
  const text = rate(value);
  return `${text} ${text === "1" ? "day" : "days"}`;
};

const ROWS_SOURCE_TEXT: Readonly<Record<TableGrowth["rowsSource"], string>> = {
  counted: "",
  statistics: " (estimated from the catalogue's statistics: counting would read the whole table)",
  sample: " (estimated from a sample of its pages: counting would read the whole table)",
};

function tableLine(table: TableGrowth): string {
  const head = `${table.table}: ${sizeText(table.bytes)}, ${table.rowsSource === "counted" ? "" : "~"}${table.rows} rows${ROWS_SOURCE_TEXT[table.rowsSource]}`;
  const growth = table.growth;
  if (growth.kind === "bounded") return `${head}; not growing with time: ${growth.reason}`;
  if (growth.kind === "unmeasured") return `${head}; growth not measured: ${growth.reason}`;
  if (growth.since === null) return `${head}; no rows yet`;
  const window = `over the last ${dayCount(growth.windowDays)}, by ${growth.timeColumn}`;
  return `${head}, +${rate(growth.rowsPerDay)} rows/day (~${sizeText(growth.bytesPerDay)}/day, ${window})`;
}

function budgetLine(outlook: StorageOutlook, bytesPerDay: number): string {
  const budget = `the ${sizeText(outlook.budgetBytes)} budget (DATABASE_STORAGE_BUDGET)`;
  if (outlook.state === "exceeded") {
    return `the database (${sizeText(outlook.usedBytes)}) is past ${budget} by ${sizeText(-outlook.leftBytes)}: move to a larger disk and raise the budget, or delete old rows of the largest tables above`;
  }
  const left = `${sizeText(outlook.leftBytes)} left of ${budget}`;
  if (outlook.daysLeft === null) return `${left}; the database is not growing`;
  const ending = `~${days(outlook.daysLeft)} days at ~${sizeText(bytesPerDay)}/day`;
  return outlook.state === "low" ? `${left}: ${ending}, under ${STORAGE_LOW_DAYS}: plan a larger disk or keep less history` : `${left}: ${ending}`;
}

function tableData(table: TableGrowth): Record<string, unknown> {
  const growth = table.growth;
  return {
    table: table.table,
    bytes: table.bytes,
    rows: table.rows,
    rowsSource: table.rowsSource,
    growth:
      growth.kind === "measured"
        ? { kind: growth.kind, timeColumn: growth.timeColumn, index: growth.index ?? null, since: growth.since?.toISOString() ?? null, windowDays: growth.windowDays, rowsPerDay: growth.rowsPerDay, bytesPerDay: growth.bytesPerDay }
        : growth,
  };
}

function growthReportOf(growth: DatabaseGrowth, budgetBytes: number | undefined): GrowthReport {
  const outlook = budgetBytes === undefined ? undefined : storageOutlook(growth.databaseBytes, growth.bytesPerDay, budgetBytes);
  const database = `database ${sizeText(growth.databaseBytes)}, growing ~${sizeText(growth.bytesPerDay)}/day`;
  const details = [
    ...growth.tables.map(tableLine),
    `${database} (pg_database_size; growth: the last ${GROWTH_WINDOW_DAYS} days' rows of each table at its bytes per row)`,
    outlook === undefined ? "no DATABASE_STORAGE_BUDGET: set it (e.g. 10GB) to see how many days of growth the database has left" : budgetLine(outlook, growth.bytesPerDay),
  ];
  const data = {
    databaseBytes: growth.databaseBytes,
    bytesPerDay: growth.bytesPerDay,
    windowDays: GROWTH_WINDOW_DAYS,
    tables: growth.tables.map(tableData),
    budget: outlook === undefined ? null : { ...outlook, lowDays: STORAGE_LOW_DAYS },
  };
  if (outlook?.state === "exceeded") {
    return { status: "fail", summary: `the database (${sizeText(outlook.usedBytes)}) is past its ${sizeText(outlook.budgetBytes)} budget`, details, data };
  }
  if (outlook?.state === "low") {
    return { status: "warn", summary: `${database}: ~${days(outlook.daysLeft ?? 0)} days left of its ${sizeText(outlook.budgetBytes)} budget`, details, data };
  }
  const left = outlook === undefined ? "" : outlook.daysLeft === null ? `, ${sizeText(outlook.leftBytes)} left of ${sizeText(outlook.budgetBytes)}` : `, ~${days(outlook.daysLeft)} days left of ${sizeText(outlook.budgetBytes)}`;
  return { status: "pass", summary: `${database}${left}`, details, data };
}

/** Reads the database's growth now (as of the run's clock) and judges it against the budget. */
export async function growthReport({ db, config, nowMs }: Pick<CheckContext, "db" | "config" | "nowMs">): Promise<GrowthReport> {
  return growthReportOf(await databaseGrowth(db, { nowMs }), config.storageBudgetBytes);
}
