import { rangeBetween, rangeOf, withoutKnown, withoutStored } from "./gap-ranges";

// Open times in steps of 10 for readability.
const STEP = 10;

describe("gap range arithmetic", () => {
  it("finds the candles missing between two stored ones, and none between neighbours", () => {
    expect(rangeBetween(100, 110, STEP)).toBeUndefined();
    expect(rangeBetween(100, 120, STEP)).toEqual({ fromTime: 110, toTime: 110, missing: 1 });
    expect(rangeBetween(100, 200, STEP)).toEqual({ fromTime: 110, toTime: 190, missing: 9 });
  });

  it("splits a range at the candles stored inside it, keeping what is still missing", () => {
    const range = rangeOf(100, 200, STEP);
    expect(withoutStored(range, [], STEP)).toEqual([range]);
    expect(withoutStored(range, [100, 110, 150, 200], STEP)).toEqual([rangeOf(120, 140, STEP), rangeOf(160, 190, STEP)]);
    expect(withoutStored(range, [50, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 250], STEP)).toEqual([]);
  });

  it("leaves out of a range what known ranges cover, in any order and overlapping its edges", () => {
    const range = rangeOf(100, 200, STEP);
    expect(withoutKnown(range, [rangeOf(150, 160, STEP), rangeOf(50, 110, STEP)], STEP)).toEqual([rangeOf(120, 140, STEP), rangeOf(170, 200, STEP)]);
    expect(withoutKnown(range, [rangeOf(190, 300, STEP)], STEP)).toEqual([rangeOf(100, 180, STEP)]);
    expect(withoutKnown(range, [rangeOf(0, 90, STEP), rangeOf(210, 300, STEP)], STEP)).toEqual([range]);
    expect(withoutKnown(range, [rangeOf(100, 200, STEP)], STEP)).toEqual([]);
  });
});
