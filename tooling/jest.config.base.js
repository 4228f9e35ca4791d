// Shared jest settings: ts-jest over CommonJS, workspace packages resolved to
// their TypeScript sources (no build needed to test). ESM-only libraries
// (trading-signals, ccxt's @noble/@scure) are required as ESM natively: Node.js 24
// can, and jest then evaluates them as modules (transpiled to CommonJS, they failed).
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
    transformIgnorePatterns: ["/node_modules/"],
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
