/**
 * How long a storage budget lasts at the database's current growth, shared by
 * verify's storage check (which warns and fails on it) and the dashboard.
 */

/** Fewer days than this left in the budget is worth a warning: time to plan a bigger disk or shorter retention. */
export const STORAGE_LOW_DAYS = 30;

export interface StorageOutlook {
  budgetBytes: number;
  usedBytes: number;
  /** What is left of the budget; negative when it is exceeded. */
  leftBytes: number;
  /** Days until the budget is used up at `bytesPerDay`; null when the database is not growing; 0 once exceeded. */
  daysLeft: number | null;
  /** exceeded: the database is at or past the budget; low: under STORAGE_LOW_DAYS left. */
  state: "ok" | "low" | "exceeded";
}

export function storageOutlook(usedBytes: number, bytesPerDay: number, budgetBytes: number): StorageOutlook {
  const leftBytes = budgetBytes - usedBytes;
  if (leftBytes <= 0) return { budgetBytes, usedBytes, leftBytes, daysLeft: 0, state: "exceeded" };
  const daysLeft = bytesPerDay > 0 ? leftBytes / bytesPerDay : null;
  return { budgetBytes, usedBytes, leftBytes, daysLeft, state: daysLeft !== null && daysLeft < STORAGE_LOW_DAYS ? "low" : "ok" };
}
