import { stallAfterMs } from "./server";

describe("/healthz's stall rule", () => {
  it("calls the loop stalled after two tick intervals plus 10 s without progress, up to a 5-minute interval", () => {
    expect(stallAfterMs(5 * 60_000)).toBe(2 * 5 * 60_000 + 10_000);
    expect(stallAfterMs(60_000)).toBe(130_000);
    expect(stallAfterMs(1000)).toBe(12_000);
    expect(stallAfterMs(100)).toBe(10_200);
  });

  it("gives the next tick at most 5 minutes beyond its interval, plus the 10 s, however long the interval", () => {
    expect(stallAfterMs(15 * 60_000)).toBe(15 * 60_000 + 5 * 60_000 + 10_000);
    expect(stallAfterMs(3_600_000)).toBe(3_600_000 + 5 * 60_000 + 10_000);
  });
});
