import { positionBacking, type Database, type PositionBacking } from "@candlekeep/db";
import { listSome, plural } from "../check";
import { signed, sqlLiteral, type BooksPart } from "./part";

/** Why a position is not what its orders add up to, or undefined when it is. */
function backingProblem(p: PositionBacking): string | undefined {
  // Without its entry order the SQL has nothing to add up (no expected quantity, no difference).
  if (p.entry === undefined || p.expectedQuantity === undefined || p.difference === undefined) {
    return `${p.symbol}: holds ${p.quantity}, but its entry order ${p.entryOrderId} is not in the ledger (a position from before the order ledger, or written without its order)`;
  }
  if (p.entry.purpose !== "entry" || p.entry.symbol !== p.symbol) {
    return `${p.symbol}: its entry_order_id ${p.entryOrderId} is the ${p.entry.purpose} order of ${p.entry.symbol}, not an entry of ${p.symbol}`;
  }
  if (p.matches) return undefined;
  const parts = [`entry ${p.entryOrderId} filled ${p.entry.filledAmount}${p.entry.status === "filled" ? "" : ` so far, ${p.entry.status}`}`];
  if (p.entry.feeBase !== "0") parts.push(`− ${p.entry.feeBase} fee in the coin`);
  if (p.exitOrders > 0) parts.push(`− ${p.exitedAmount} sold by ${plural(p.exitOrders, "exit")}`);
  return `${p.symbol}: the position holds ${p.quantity}, its orders add up to ${p.expectedQuantity} (${parts.join(" ")}); off by ${signed(p.difference)}`;
}

/**
 * Every open position is what its orders add up to: the entry's fill less a fee
 * taken in the coin less what final exits sold, compared exactly in SQL.
 */
export async function positionsBacked(db: Pick<Database, "sql">, exchange: string): Promise<BooksPart> {
  const positions = await positionBacking(db, exchange);
  const problems = positions.flatMap((p) => {
    const problem = backingProblem(p);
    return problem === undefined ? [] : [{ position: p, problem }];
  });
  const filling = positions.filter((p) => p.pendingExitAmount !== "0");
  const part: BooksPart = {
    summary: positions.length === 0 ? "no open positions" : `${plural(positions.length, "open position")} backed by ${positions.length === 1 ? "its" : "their"} orders`,
    failures: problems.map((p) => p.problem),
    warnings: [],
    notes: filling.map((p) => `${p.symbol}: an exit still filling has sold ${p.pendingExitAmount}, taken off the position once it is final`),
    lookInto: [],
    data: { positions },
  };
  if (problems.length > 0) {
    const keys = problems.map((p) => sqlLiteral(p.position.entryOrderId));
    part.lookInto.push(
      `the orders of ${listSome(problems.map((p) => p.position.symbol))}: SELECT id, position_key, purpose, side, status, filled_amount, fee_base, created_at, updated_at FROM orders WHERE exchange = ${sqlLiteral(exchange)} AND (client_order_id IN (${keys.join(", ")}) OR position_key IN (${keys.join(", ")})) ORDER BY position_key, id`,
    );
  }
  return part;
}
