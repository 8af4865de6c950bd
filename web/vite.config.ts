import { defineConfig } from "vite";

// Built into the Python package, which serves it: / and /dashboard/* -> index.html, /assets/* (hashed).
export default defineConfig({
  base: "/",
  build: {
    outDir: "../owp_bot/web/static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
  },
});
