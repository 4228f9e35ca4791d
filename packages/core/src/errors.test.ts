import { describeError, isCcxtError } from "./errors";

// Stand-ins named like ccxt's classes: isCcxtError goes by class name, as two copies of ccxt (ESM and CommonJS) have different classes.
class ExchangeError extends Error {}
class AuthenticationError extends ExchangeError {}
class PermissionDenied extends AuthenticationError {}

describe("isCcxtError", () => {
  it("matches an error of the named class or of a subclass, and nothing else", () => {
    expect(isCcxtError(new AuthenticationError("bad key"), "AuthenticationError")).toBe(true);
    expect(isCcxtError(new PermissionDenied("no trading permission"), "AuthenticationError")).toBe(true);
    expect(isCcxtError(new ExchangeError("down"), "AuthenticationError")).toBe(false);
    expect(isCcxtError("AuthenticationError", "AuthenticationError")).toBe(false);
  });
});

describe("describeError", () => {
  it("gives the message of an error, else its name, and the text of anything else", () => {
    expect(describeError(new Error("boom"))).toBe("boom");
    expect(describeError(new TypeError())).toBe("TypeError");
    expect(describeError(42)).toBe("42");
  });
});
