/**
 * Base for errors a user can fix by changing a setting or the environment.
 * `message` is the one line shown to the user: what is wrong and what to do.
 */
export class UserFacingError extends Error {
  override readonly name: string = "UserFacingError";
}

/** One clear line for any thrown value, without a stack trace. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/**
 * True when `error` is an instance of the ccxt error class `className` or a
 * subclass of it. The names are checked along the prototype chain rather than
 * with instanceof, so errors from ccxt's ESM and CommonJS builds (two copies of
 * each class) both match; ccxt itself need not be loaded to ask.
 */
export function isCcxtError(error: unknown, className: string): boolean {
  if (!(error instanceof Error)) return false;
  for (let proto: unknown = Object.getPrototypeOf(error); proto !== null && typeof proto === "object"; proto = Object.getPrototypeOf(proto)) {
    const ctor: unknown = Reflect.get(proto, "constructor");
    if (typeof ctor === "function" && ctor.name === className) return true;
  }
  return false;
}
