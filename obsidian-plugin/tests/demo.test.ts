/** One-click demo from the admin view, against `owp demo --no-start` (demo mode with its GitHub stand-in). */

import { afterAll, beforeAll, expect, it } from "vitest";
import { App, Notice } from "obsidian";
import OwpPlugin from "../src/main";
import { VIEW_ADMIN, type AdminView } from "../src/views/admin";
import { ADMIN_TOKEN, PoolServer } from "./pool-server";
import { eventually } from "./helpers";

let server: PoolServer;
let plugin: OwpPlugin;
let app: App;

beforeAll(async () => {
  server = await PoolServer.start({}, true);
  app = new App();
  plugin = new OwpPlugin(app as never, { id: "owp-pool", name: "OWP Pool", version: "0.1.0" } as never);
  (plugin as unknown as { data: unknown }).data = { baseUrl: server.url, adminToken: ADMIN_TOKEN, liveUpdates: "poll" };
  await (plugin as unknown as { enable(): Promise<void> }).enable();
});

afterAll(async () => {
  plugin?.unload();
  await server?.stop();
});

it("starts the server's demo scenario and shows its progress", async () => {
  await plugin.openView(VIEW_ADMIN);
  const view = app.workspace.getLeavesOfType(VIEW_ADMIN)[0].view as unknown as AdminView;
  await eventually(() => expect(view.demo.value?.state).toBe("not_started"));
  const start = [...view.contentEl.querySelectorAll("button")].find((b) => b.textContent === "Start the demo scenario")!;
  start.click();
  await eventually(() => expect(Notice.shown).toContain("OWP: demo started; the admin view shows its progress"));
  await eventually(() => expect(view.demo.value?.state).toBe("running"), 10000);
  await eventually(() => expect(Object.values(view.demo.value?.tasks ?? {}).reduce((a, b) => a + b, 0)).toBeGreaterThan(0), 10000);
  const demo = [...view.contentEl.querySelectorAll(".owp-section")].find((s) => s.textContent?.startsWith("Demo"))!;
  expect(demo.textContent).toContain("staterunning");
  // a second start is the server's 409, shown with its own words
  await plugin.startDemo();
  expect(Notice.shown.at(-1)).toMatch(/^OWP \(409\): the demo is already running/);
});
