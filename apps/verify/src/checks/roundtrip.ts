import { roundTrip, type RoundTripKind } from "@candlekeep/db";
import type { Check } from "../check";

const LABEL: Readonly<Record<RoundTripKind, string>> = { candle: "candle", event: "event", position: "position", trade: "trade", order: "order", account: "account snapshot" };

/** Check 4: one row of each kind written and read back equal inside a transaction that is rolled back. */
export const roundTripCheck: Check = async ({ db, nowMs }) => {
  const results = await roundTrip(db, { nowMs });
  const failed = results.filter((r) => !r.ok);
  const data = { results, rolledBack: true };
  if (failed.length > 0) {
    const lines = failed.map((r) => `${LABEL[r.kind]}: ${r.problem ?? "failed"}`);
    return { status: "fail", summary: `${failed.map((r) => LABEL[r.kind]).join(", ")} did not round-trip: ${lines[0] ?? ""}${failed.length > 1 ? " …" : ""}`, details: lines, data };
  }
  const kinds = results.map((r) => LABEL[r.kind]);
  return { status: "pass", summary: `${kinds.slice(0, -1).join(", ")} and ${kinds.at(-1) ?? ""} written and read back equal; rolled back`, data };
};
