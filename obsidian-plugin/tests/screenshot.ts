/** Renders the plugin's views (mock Obsidian, real server with sample work) into build/screenshot.html, then
 * takes docs/screenshot.png with headless Chromium when it is installed. Run with `npm run screenshot`. */

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { App } from "obsidian";
import OwpPlugin from "../src/main";
import { VIEW_POOL } from "../src/views/pool";
import { VIEW_WORK } from "../src/views/work";
import { PoolServer } from "./pool-server";
import { eventually, registeredWorker } from "./helpers";

const DIR = resolve(__dirname, "..");
let server: PoolServer;

beforeAll(async () => {
  server = await PoolServer.start();
});

afterAll(async () => {
  await server?.stop();
});

/** A dark theme with the CSS variables Obsidian defines, so styles.css renders as in the app. */
const THEME = `
body { margin: 0; background: #1e1e1e; color: #dadada; font-family: -apple-system, "Segoe UI", Inter, sans-serif; display: flex; gap: 0; }
:root { --size-2-1: 2px; --size-4-1: 4px; --size-4-2: 8px; --size-4-3: 12px; --radius-m: 6px; --font-ui-small: 13px;
  --font-semibold: 600; --background-secondary: #262626; --background-modifier-border: #3a3a3a; --text-muted: #9a9a9a;
  --text-accent: #a68af9; --text-error: #fb464c; --color-green: #44cf6e; --color-orange: #e9973f; }
.pane { width: 460px; border-right: 1px solid #3a3a3a; min-height: 100vh; }
.pane-title { padding: 8px 12px; background: #262626; font-weight: 600; border-bottom: 1px solid #3a3a3a; }
button { background: #363636; color: #dadada; border: 1px solid #4a4a4a; border-radius: 4px; padding: 3px 10px; font-size: 12px; }
button.mod-cta { background: #7f6df2; border-color: #7f6df2; color: white; }
select, input { background: #262626; color: #dadada; border: 1px solid #4a4a4a; border-radius: 4px; padding: 2px 6px; }
a { color: #a68af9; } h4 { font-size: 14px; }
.statusbar { position: fixed; right: 0; bottom: 0; background: #262626; padding: 4px 12px; border-top-left-radius: 6px; font-size: 12px; }`;

it("renders the offers/leases and pool views", async () => {
  await server.repo("acme/api", 3);
  await server.repo("acme/docs", 2);
  const tasks: [string, string, string[], number][] = [
    ["acme/api", "Retry webhooks with backoff", ["python"], 3],
    ["acme/api", "Paginate GET /v1/tasks", ["python"], 2],
    ["acme/docs", "Document the lease lifecycle", ["docs"], 1],
    ["acme/api", "Rate-limit the register endpoint", ["python", "security"], 5],
    ["acme/docs", "Tutorial: your first task", ["docs"], 2],
  ];
  for (const [repo, title, skills, points] of tasks) {
    await server.task(repo, title, { required_skills: skills, estimate_points: points, url: `https://github.com/${repo}/issues/${title.length}` });
  }
  const other = await registeredWorker(server, "bea", ["docs"], 3, 1);
  const offer = (await other.client.offers()).offers[0];
  await other.client.accept(offer.offer_id);

  const app = new App();
  const plugin = new OwpPlugin(app as never, { id: "owp-pool", name: "OWP Pool", version: "0.1.0" } as never);
  const me = await registeredWorker(server, "ann", ["python", "docs"], 8, 3);
  (plugin as unknown as { data: unknown }).data = { baseUrl: server.url, workerId: me.workerId, workerToken: me.creds.workerToken, liveUpdates: "poll" };
  await (plugin as unknown as { enable(): Promise<void> }).enable();
  await plugin.openView(VIEW_WORK);
  await eventually(() => expect(plugin.offers.length).toBeGreaterThan(1));
  await plugin.acceptOffer(plugin.offers[0]);
  await plugin.refreshOffers();
  await plugin.openView(VIEW_POOL);
  const pool = app.workspace.getLeavesOfType(VIEW_POOL)[0].view!;
  await eventually(() => expect(pool.contentEl.querySelectorAll(".owp-table")).toHaveLength(3));

  const work = app.workspace.getLeavesOfType(VIEW_WORK)[0].view!;
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>OWP Pool plugin</title>
<style>${THEME}</style><style>${readFileSync(resolve(DIR, "styles.css"), "utf8")}</style></head><body>
<div class="pane"><div class="pane-title">OWP offers and leases</div>${work.contentEl.outerHTML}</div>
<div class="pane"><div class="pane-title">OWP pool status</div>${pool.contentEl.outerHTML}</div>
<div class="statusbar">${app.statusBarEl.textContent}</div></body></html>`;
  plugin.unload();
  mkdirSync(resolve(DIR, "build"), { recursive: true });
  const html = resolve(DIR, "build/screenshot.html");
  writeFileSync(html, page);
  const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => existsSync(p));
  if (chromium) {
    execFileSync(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=920,760",
      `--screenshot=${resolve(DIR, "docs/screenshot.png")}`, `file://${html}`], { stdio: "ignore" });
  }
  expect(page).toContain("Retry webhooks with backoff");
});
