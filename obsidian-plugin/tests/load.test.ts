/** The built main.js, loaded the way Obsidian loads it (CommonJS with `obsidian` provided): onload and onunload
 * run without error and leave no interval, event handler, command or element behind. */

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as obsidian from "obsidian";
import { freePort } from "./pool-server";

const PLUGIN_DIR = resolve(__dirname, "..");

function loadMainJs(): new (app: obsidian.App, manifest: obsidian.PluginManifest) => obsidian.Plugin {
  const source = readFileSync(resolve(PLUGIN_DIR, "main.js"), "utf8");
  const module = { exports: {} as Record<string, unknown> };
  const require = (name: string) => {
    if (name === "obsidian") return obsidian;
    throw new Error(`main.js requires ${name}, which Obsidian does not provide`);
  };
  new Function("require", "module", "exports", source)(require, module, module.exports);
  const exported = (module.exports.default ?? module.exports) as never;
  return exported;
}

describe("main.js", () => {
  const live = new Set<unknown>();
  const original = { set: window.setInterval, clear: window.clearInterval };

  beforeEach(() => {
    window.setInterval = ((handler: () => void, ms?: number) => {
      const id = original.set.call(window, handler, ms);
      live.add(id);
      return id;
    }) as unknown as typeof window.setInterval;
    window.clearInterval = ((id?: number) => {
      live.delete(id);
      original.clear.call(window, id);
    }) as typeof window.clearInterval;
  });

  afterEach(() => {
    for (const id of live) original.clear.call(window, id as number);
    live.clear();
    window.setInterval = original.set;
    window.clearInterval = original.clear;
  });

  it("loads and unloads with no error and nothing leaked", async () => {
    const Plugin = loadMainJs();
    const manifest = JSON.parse(readFileSync(resolve(PLUGIN_DIR, "manifest.json"), "utf8"));
    const app = new obsidian.App();
    const plugin = new Plugin(app, manifest) as obsidian.Plugin & { enable(): Promise<void>; openView(type: string): Promise<void> };
    // nothing listens there: views fall back to polling, heartbeats fail quietly into the status bar
    (plugin as unknown as { data: unknown }).data = { baseUrl: `http://127.0.0.1:${await freePort()}`, workerToken: "tok", workerId: "w_x", adminToken: "admin-token-0123456789" };
    await plugin.enable();
    for (const type of ["owp-work", "owp-pool", "owp-admin"]) await plugin.openView(type);
    await new Promise((r) => setTimeout(r, 200));
    expect(live.size).toBeGreaterThanOrEqual(3); // heartbeat, note sync, countdown (+ pool polling)
    expect(app.metadataCache.listenerCount("changed")).toBe(1);
    expect(app.statusBarEl.textContent).toBe("OWP: idle (offline)");
    expect(plugin.commands.size).toBeGreaterThanOrEqual(20);

    plugin.unload();
    await new Promise((r) => setTimeout(r, 50));
    expect([...live]).toEqual([]);
    expect(app.metadataCache.listenerCount("changed")).toBe(0);
    expect(plugin.commands.size).toBe(0);
    expect(app.statusBarEl.childElementCount).toBe(0);
    expect(app.ribbonEl.childElementCount).toBe(0);
    expect(app.workspace.leaves).toEqual([]);
  });

  it("does not put data into innerHTML or log tokens", () => {
    const source = readFileSync(resolve(PLUGIN_DIR, "main.js"), "utf8");
    expect(source).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML/);
    expect(source).not.toMatch(/console\.(log|info|debug)\([^)]*[Tt]oken/);
  });
});
