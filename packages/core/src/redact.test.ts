import { redactText, redactValue, scrubSecrets, REDACTED } from "./redact";

describe("redactText", () => {
  it("masks the password of a connection string and keeps the rest", () => {
    expect(redactText("connect postgresql://bot:s3cr%40t@db.example.com:25060/app failed")).toBe(
      `connect postgresql://bot:${REDACTED}@db.example.com:25060/app failed`,
    );
  });

  it("masks a password that itself contains a colon", () => {
    expect(redactText("postgres://u:a:b:c@h/d")).toBe(`postgres://u:${REDACTED}@h/d`);
  });

  it("leaves urls without credentials alone", () => {
    expect(redactText("http://127.0.0.1:8080/healthz")).toBe("http://127.0.0.1:8080/healthz");
  });
});

describe("redactValue", () => {
  it("masks secret keys at any depth and redacts urls in other strings", () => {
    const out = redactValue({
      exchange: { apiKey: "AKIA123", secret: "shh", id: "binance" },
      url: "postgresql://a:pw@h/db",
      list: [{ password: "x" }],
    });
    expect(out).toEqual({
      exchange: { apiKey: REDACTED, secret: REDACTED, id: "binance" },
      url: `postgresql://a:${REDACTED}@h/db`,
      list: [{ password: REDACTED }],
    });
  });
});

describe("scrubSecrets", () => {
  it("masks the given key and secret, request signatures and URL passwords, wherever they appear", () => {
    const text = 'binance GET https://api.binance.com/api/v3/account?timestamp=1&signature=9f8e7d 401 {"msg":"Invalid API-key AKIA-4f9a2c"} secret s3cr3t-xyz via http://u:pw@proxy:3128';
    expect(scrubSecrets(text, ["AKIA-4f9a2c", "s3cr3t-xyz"])).toBe(
      `binance GET https://api.binance.com/api/v3/account?timestamp=1&signature=${REDACTED} 401 {"msg":"Invalid API-key ${REDACTED}"} secret ${REDACTED} via http://u:${REDACTED}@proxy:3128`,
    );
  });

  it("leaves text alone for unset or very short values, which would blank unrelated words", () => {
    expect(scrubSecrets("a timeout on binance", [undefined, "", "a"])).toBe("a timeout on binance");
  });
});
