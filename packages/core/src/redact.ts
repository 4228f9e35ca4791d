/**
 * Secret masking for anything that may reach a log line or an error message.
 * Two shapes are covered: values under secret-looking keys, and credentials
 * embedded in connection strings (scheme://user:password@host).
 */

export const REDACTED = "***";

const SECRET_KEY = /pass(word)?|secret|api[-_]?key|token|authorization|private[-_]?key|ca[-_]?cert/i;

// user:password@ inside any scheme://… string; the password may itself contain ':'
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@\s]*@/gi;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Replaces passwords inside any connection strings found in `text`. */
export function redactText(text: string): string {
  return text.replace(URL_CREDENTIALS, `$1:${REDACTED}@`);
}

/** Deep copy of `value` with secret keys masked and connection strings redacted. */
export function redactValue(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[circular]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, seen));
  if (value instanceof Error) {
    return { name: value.name, message: redactText(value.message) };
  }
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = isSecretKey(key) && inner !== undefined && inner !== null && inner !== "" ? REDACTED : redactValue(inner, seen);
  }
  return out;
}

/**
 * Removes credentials from text that may echo a request (an exchange library's
 * error message): the key and secret values themselves, request signatures,
 * and user:password@ in URLs.
 */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = redactText(text).replace(/(signature=)[^&\s"']+/gi, `$1${REDACTED}`);
  for (const secret of secrets) {
    // Very short values would blank out unrelated text; real keys are long.
    if (secret && secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  return out;
}
