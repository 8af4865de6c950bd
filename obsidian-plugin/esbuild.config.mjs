// Bundles src/main.ts into the main.js Obsidian loads (CommonJS, `obsidian` and its editor deps provided by the app).
import { build } from "esbuild";

await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "cjs",
  platform: "browser",
  target: "es2021",
  external: ["obsidian", "electron", "@codemirror/*", "@lezer/*"],
  outfile: "main.js",
  sourcemap: process.argv.includes("--dev") ? "inline" : false,
  logLevel: "warning",
});
