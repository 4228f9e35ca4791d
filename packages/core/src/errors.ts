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
