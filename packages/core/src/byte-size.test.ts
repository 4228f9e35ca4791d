import { z } from "zod";
import { byteSizeSetting } from "./byte-size";
import { parseSettings, InvalidSettingsError } from "./settings";

const schema = z.object({ DATABASE_STORAGE_BUDGET: byteSizeSetting("DATABASE_STORAGE_BUDGET").optional() });
const budget = (value: string) => parseSettings(schema, { DATABASE_STORAGE_BUDGET: value }).DATABASE_STORAGE_BUDGET;

function problems(value: string): string[] {
  try {
    parseSettings(schema, { DATABASE_STORAGE_BUDGET: value });
  } catch (error) {
    if (error instanceof InvalidSettingsError) return error.problems;
    throw error;
  }
  throw new Error(`expected ${value} to be refused`);
}

describe("a size setting", () => {
  it("reads binary units in any case, with or without a space or a fraction", () => {
    expect(budget("10GB")).toBe(10 * 1024 ** 3);
    expect(budget("500 mb")).toBe(500 * 1024 ** 2);
    expect(budget(" 1.5TB ")).toBe(1.5 * 1024 ** 4);
    expect(budget("64kB")).toBe(65_536);
    expect(budget("2GiB")).toBe(2 * 1024 ** 3);
    expect(budget("123456789B")).toBe(123_456_789);
  });

  it("is unset when empty, as every setting is", () => {
    expect(parseSettings(schema, { DATABASE_STORAGE_BUDGET: "" }).DATABASE_STORAGE_BUDGET).toBeUndefined();
  });

  it("names what is wrong with a malformed size, without echoing it", () => {
    expect(problems("10")).toEqual(["DATABASE_STORAGE_BUDGET needs a unit, such as 10GB or 500MB, not a bare number (B, kB, MB, GB, TB; 1 GB = 1024 MB)"]);
    expect(problems("10 gigs")).toEqual(["DATABASE_STORAGE_BUDGET has an unknown unit; use one of B, kB, MB, GB, TB; 1 GB = 1024 MB, such as 10GB"]);
    for (const bad of ["lots", "GB", "-5GB", "1,5GB", "10 GB free", "   "]) {
      expect(problems(bad)).toEqual(["DATABASE_STORAGE_BUDGET must be a size such as 10GB or 500MB (B, kB, MB, GB, TB; 1 GB = 1024 MB)"]);
    }
    expect(problems("0GB")).toEqual(["DATABASE_STORAGE_BUDGET must be more than 0; unset it to go without one"]);
    expect(problems("2048TB")).toEqual(["DATABASE_STORAGE_BUDGET must be at most 1024TB"]);
    expect(problems("7 gigs").join()).not.toContain("gigs");
  });
});
