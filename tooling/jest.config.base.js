// Shared jest settings: ts-jest over CommonJS, workspace packages resolved to
// their TypeScript sources (no build needed to test), ESM-only libraries
// (trading-signals, ccxt's @noble/@scure) transpiled to CommonJS for the test runtime.
const path = require("node:path");

/** @param {string} packageDir */
module.exports = function jestConfig(packageDir) {
  const root = path.resolve(__dirname, "..");
  return {
    rootDir: packageDir,
    testEnvironment: "node",
    testMatch: ["<rootDir>/src/**/*.test.ts"],
    transform: {
      "^.+\\.[tj]s$": ["ts-jest", { tsconfig: { ...require(path.join(root, "tsconfig.base.json")).compilerOptions, module: "commonjs", moduleResolution: "node10", allowJs: true, isolatedModules: true } }],
    },
    // ESM-only libraries: trading-signals, and @noble/@scure which ccxt's CommonJS build requires.
    transformIgnorePatterns: ["/node_modules/(?!(\\.pnpm/(trading-signals|@noble\\+[a-z0-9-]+|@scure\\+[a-z0-9-]+)[^/]*/node_modules/)?(trading-signals|@noble|@scure)/)"],
    moduleNameMapper: {
      // The generated Prisma client imports its siblings as "./x.js" (ESM style) while the files are .ts.
      "^(\\.{1,2}/.*)\\.js$": "$1",
      "^@candlekeep/db$": path.join(root, "packages/db/src/index.ts"),
      "^@candlekeep/db/testing$": path.join(root, "packages/db/src/testing.ts"),
      "^@candlekeep/core$": path.join(root, "packages/core/src/index.ts"),
      "^dashboard$": path.join(root, "apps/dashboard/src/index.ts"),
    },
    testTimeout: 60000,
  };
};
