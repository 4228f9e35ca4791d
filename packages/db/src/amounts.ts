/** Why an amount cannot be stored (PostgreSQL's numeric would take NaN and Infinity), or undefined. */
export function amountProblem(name: string, value: number | null): string | undefined {
  return value === null || Number.isFinite(value) ? undefined : `${name} must be a finite number, got ${value}`;
}
