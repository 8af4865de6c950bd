/** Settings: saved data merged over defaults, and the settings tab writing what is typed into it. */

import { describe, expect, it } from "vitest";
import { App, Setting, TextComponent, DropdownComponent } from "obsidian";
import OwpPlugin from "../src/main";
import { DEFAULT_SETTINGS, loadSettings, normaliseFolder, OwpSettingTab } from "../src/settings";

describe("loadSettings", () => {
  it("starts from the defaults", () => {
    expect(loadSettings(null)).toEqual(DEFAULT_SETTINGS);
    expect(loadSettings("garbage")).toEqual(DEFAULT_SETTINGS);
  });

  it("keeps valid saved values and replaces invalid ones", () => {
    const loaded = loadSettings({
      baseUrl: " https://pool.example ", workerToken: "tok", workerId: "w_1", adminToken: 42, liveUpdates: "poll",
      pollSeconds: "2", heartbeatSeconds: 45, taskFolder: "/Work//OWP/", workerStatus: "asleep",
    });
    expect(loaded).toEqual({
      ...DEFAULT_SETTINGS, baseUrl: "https://pool.example", workerToken: "tok", workerId: "w_1", liveUpdates: "poll",
      heartbeatSeconds: 45, taskFolder: "Work/OWP",
    });
    expect(normaliseFolder("  ")).toBe(DEFAULT_SETTINGS.taskFolder);
  });
});

describe("the settings tab", () => {
  it("shows every setting and saves what is typed", async () => {
    const app = new App();
    const plugin = new OwpPlugin(app as never, { id: "owp-pool", name: "OWP Pool", version: "0.1.0" });
    await plugin.enable();
    const tab = new OwpSettingTab(app as never, plugin);
    Setting.all = [];
    tab.display();
    const byName = new Map(Setting.all.map((s) => [s.nameEl.textContent, s]));
    expect([...byName.keys()]).toEqual([
      "Scheduler URL", "Worker", "Worker token", "Worker id", "Admin token", "Live updates", "Refresh every (seconds)", "Task notes folder",
    ]);
    expect((byName.get("Worker token")!.components[0] as TextComponent).inputEl.type).toBe("password");
    expect((byName.get("Admin token")!.components[0] as TextComponent).inputEl.type).toBe("password");
    await (byName.get("Scheduler URL")!.components[0] as TextComponent).enter(" http://127.0.0.1:9999 ");
    await (byName.get("Live updates")!.components[0] as DropdownComponent).enter("poll");
    await (byName.get("Refresh every (seconds)")!.components[0] as TextComponent).enter("1");
    await (byName.get("Task notes folder")!.components[0] as TextComponent).enter("/Pool/");
    expect(plugin.data).toMatchObject({ baseUrl: "http://127.0.0.1:9999", liveUpdates: "poll", pollSeconds: 30, taskFolder: "Pool" });
    await (byName.get("Refresh every (seconds)")!.components[0] as TextComponent).enter("15");
    expect(plugin.data).toMatchObject({ pollSeconds: 15 });
    plugin.unload();
  });
});
