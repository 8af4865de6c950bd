// `npm run screenshot`: renders the views against a real server into build/screenshot.html (see tests/screenshot.ts).
import { defineConfig } from "vitest/config";
import base from "./vitest.config";

export default defineConfig({ resolve: base.resolve, test: { ...base.test, include: ["tests/screenshot.ts"], testTimeout: 60000 } });
