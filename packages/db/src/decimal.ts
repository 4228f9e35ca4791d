import { Prisma } from "./generated/prisma/client";

/** A JS number as an exact numeric value, through its shortest decimal form (what the bot computed). */
export const toDecimal = (value: number) => new Prisma.Decimal(String(value));
