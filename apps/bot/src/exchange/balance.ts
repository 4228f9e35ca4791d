import type { Balance, Broker } from "./types";

/** The broker's balance of `currency`: all zero when the account holds none of it. */
export async function balanceOf(broker: Pick<Broker, "balances">, currency: string): Promise<Balance> {
  return (await broker.balances()).find((b) => b.currency === currency) ?? { currency, free: 0, used: 0, total: 0 };
}
