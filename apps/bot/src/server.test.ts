import { stallAfterMs } from "./server";

describe("/healthz's stall rule", () => {
  it("calls the loop stalled after about two tick intervals without progress, plus 10 s of slack", () => {
    expect(stallAfterMs(60_000)).toBe(130_000);
    expect(stallAfterMs(1000)).toBe(12_000);
    expect(stallAfterMs(100)).toBe(10_200);
  });

  it("allows a tick at most 5 minutes after it was due, however long the interval", () => {
    expect(stallAfterMs(15 * 60_000)).toBe(15 * 60_000 + 5 * 60_000 + 10_000);
    expect(stallAfterMs(3_600_000)).toBe(3_600_000 + 5 * 60_000 + 10_000);
  });
});
