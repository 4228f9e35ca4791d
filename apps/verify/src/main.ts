// Placeholder entry until the runner lands (issue 3).
console.log("candlekeep bot");
