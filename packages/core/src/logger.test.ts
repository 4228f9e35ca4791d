import { createLogger, type LoggerOptions } from "./logger";

const ESCAPE = "\u001b[";

/** The text one info line becomes with these options (winston's formatted message). */
function formatted(options: Partial<LoggerOptions>): string {
  const logger = createLogger({ level: "info", format: "pretty", ...options });
  const info = logger.format.transform({ level: "info", message: "tick", [Symbol.for("level")]: "info", written: 3 }, {});
  if (typeof info === "boolean") throw new Error("the line was filtered out");
  return String(info[Symbol.for("message")]);
}

/** Runs `body` with process.stderr.isTTY set to `isTty`. */
function withStderrTty<T>(isTty: boolean, body: () => T): T {
  const had = Object.getOwnPropertyDescriptor(process.stderr, "isTTY");
  Object.defineProperty(process.stderr, "isTTY", { value: isTty, configurable: true });
  try {
    return body();
  } finally {
    if (had) Object.defineProperty(process.stderr, "isTTY", had);
    else delete (process.stderr as { isTTY?: boolean }).isTTY;
  }
}

describe("pretty log lines", () => {
  it("colour the level only when told to", () => {
    expect(formatted({ color: true })).toContain(`${ESCAPE}32minfo${ESCAPE}39m`);
    expect(formatted({ color: false })).toMatch(/^\d\d:\d\d:\d\d\.\d{3} info tick {2}written=3$/);
  });

  it("are coloured on a terminal and plain when stderr is a pipe or a file", () => {
    expect(withStderrTty(true, () => formatted({}))).toContain(ESCAPE);
    expect(withStderrTty(false, () => formatted({}))).not.toContain(ESCAPE);
  });

  it("never colour JSON lines", () => {
    expect(formatted({ format: "json", color: true })).not.toContain(ESCAPE);
  });
});
