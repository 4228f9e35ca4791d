import fs from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const WEB_SRC = path.resolve(__dirname, "../src/web");

/**
 * Bundles the page (src/web: TypeScript + lightweight-charts) into `outDir` as
 * index.html, app.js and app.css: everything the browser needs, no CDN.
 */
export async function buildWeb(outDir: string): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(WEB_SRC, "app.ts")],
    bundle: true,
    minify: true,
    // No source map: the served files are exactly index.html, app.js and app.css.
    sourcemap: false,
    format: "iife",
    target: ["chrome120", "firefox120", "safari16"],
    outfile: path.join(outDir, "app.js"),
    logLevel: "warning",
  });
  fs.copyFileSync(path.join(WEB_SRC, "index.html"), path.join(outDir, "index.html"));
  fs.copyFileSync(path.join(WEB_SRC, "app.css"), path.join(outDir, "app.css"));
}

if (require.main === module) {
  buildWeb(path.resolve(__dirname, "../dist/web")).catch((error: unknown) => {
    process.stderr.write(`building the dashboard page failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
