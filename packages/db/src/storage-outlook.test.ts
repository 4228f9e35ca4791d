import { STORAGE_LOW_DAYS, storageOutlook } from "./storage-outlook";

const MB = 1024 * 1024;

describe("how long a storage budget lasts", () => {
  it("divides what is left of the budget by the growth per day", () => {
    expect(storageOutlook(400 * MB, 2 * MB, 1000 * MB)).toEqual({ budgetBytes: 1000 * MB, usedBytes: 400 * MB, leftBytes: 600 * MB, daysLeft: 300, state: "ok" });
  });

  it(`is low under ${STORAGE_LOW_DAYS} days left`, () => {
    expect(storageOutlook(941 * MB, 2 * MB, 1000 * MB)).toMatchObject({ daysLeft: 29.5, state: "low" });
    expect(storageOutlook(940 * MB, 2 * MB, 1000 * MB)).toMatchObject({ daysLeft: 30, state: "ok" });
  });

  it("has no end while the database does not grow", () => {
    expect(storageOutlook(400 * MB, 0, 1000 * MB)).toMatchObject({ daysLeft: null, state: "ok" });
  });

  it("is exceeded once the database takes the whole budget", () => {
    expect(storageOutlook(1001 * MB, 2 * MB, 1000 * MB)).toEqual({ budgetBytes: 1000 * MB, usedBytes: 1001 * MB, leftBytes: -MB, daysLeft: 0, state: "exceeded" });
    expect(storageOutlook(1000 * MB, 0, 1000 * MB)).toMatchObject({ daysLeft: 0, state: "exceeded" });
  });
});
