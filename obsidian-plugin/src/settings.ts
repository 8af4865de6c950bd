/** The plugin's settings (kept in the plugin's data.json) and the settings tab. Tokens are never logged. */

import { App, PluginSettingTab, Setting } from "obsidian";
import type { WorkerState } from "./api";

export type LiveUpdates = "stream" | "poll";

export interface OwpSettings {
  baseUrl: string;
  workerId: string;
  workerToken: string;
  adminToken: string;
  liveUpdates: LiveUpdates;
  pollSeconds: number;
  heartbeatSeconds: number;
  taskFolder: string;
  workerStatus: WorkerState;
}

export const DEFAULT_SETTINGS: OwpSettings = {
  baseUrl: "http://127.0.0.1:8787",
  workerId: "",
  workerToken: "",
  adminToken: "",
  liveUpdates: "stream",
  pollSeconds: 30,
  heartbeatSeconds: 60,
  taskFolder: "OWP Tasks",
  workerStatus: "idle",
};

const STATES: readonly WorkerState[] = ["idle", "working", "paused"];

/** Saved data merged over the defaults; values of the wrong type or range fall back to the default. */
export function loadSettings(saved: unknown): OwpSettings {
  const data = saved && typeof saved === "object" ? (saved as Record<string, unknown>) : {};
  const text = (key: keyof OwpSettings): string =>
    typeof data[key] === "string" ? (data[key] as string) : (DEFAULT_SETTINGS[key] as string);
  const seconds = (key: "pollSeconds" | "heartbeatSeconds", min: number): number => {
    const value = Number(data[key]);
    return Number.isFinite(value) && value >= min ? Math.round(value) : DEFAULT_SETTINGS[key];
  };
  return {
    baseUrl: text("baseUrl").trim() || DEFAULT_SETTINGS.baseUrl,
    workerId: text("workerId"),
    workerToken: text("workerToken"),
    adminToken: text("adminToken"),
    liveUpdates: data.liveUpdates === "poll" ? "poll" : "stream",
    pollSeconds: seconds("pollSeconds", 5),
    heartbeatSeconds: seconds("heartbeatSeconds", 10),
    taskFolder: normaliseFolder(text("taskFolder")),
    workerStatus: STATES.includes(data.workerStatus as WorkerState) ? (data.workerStatus as WorkerState) : "idle",
  };
}

/** A vault folder path without leading/trailing slashes; empty means the default folder. */
export function normaliseFolder(folder: string): string {
  const cleaned = folder.trim().replace(/\\/g, "/").replace(/^\/+|\/+$/g, "").replace(/\/{2,}/g, "/");
  return cleaned || DEFAULT_SETTINGS.taskFolder;
}

/** What the settings tab needs from the plugin. */
export interface SettingsHost {
  settings: OwpSettings;
  saveSettings(): Promise<void>;
  openRegisterModal(): void;
}

export class OwpSettingTab extends PluginSettingTab {
  constructor(
    app: App,
    private readonly host: SettingsHost & ConstructorParameters<typeof PluginSettingTab>[1],
  ) {
    super(app, host);
  }

  override display(): void {
    const { containerEl } = this;
    const settings = this.host.settings;
    const save = () => this.host.saveSettings();
    containerEl.empty();
    containerEl.createEl("h2", { text: "OWP Pool" });
    type TextKey = "baseUrl" | "workerToken" | "workerId" | "adminToken" | "taskFolder";
    const text = (name: string, desc: string, key: TextKey, secret = false, clean = (v: string) => v.trim()) =>
      new Setting(containerEl)
        .setName(name)
        .setDesc(desc)
        .addText((input) => {
          if (secret) input.inputEl.type = "password";
          input.setValue(settings[key]).onChange(async (value) => {
            settings[key] = clean(value);
            await save();
          });
        });

    text("Scheduler URL", "Where the pool runs, for example http://127.0.0.1:8787", "baseUrl");
    new Setting(containerEl)
      .setName("Worker")
      .setDesc(settings.workerId ? `Registered as ${settings.workerId}` : "Not registered yet")
      .addButton((button) => button.setButtonText("Register as a worker…").onClick(() => this.host.openRegisterModal()));
    text("Worker token", "Shown once when you register; stored in this plugin's data only", "workerToken", true);
    text("Worker id", "Your w_… id (filled in when you register here)", "workerId");
    text("Admin token", "Optional: enables the admin view (trust tiers, analytics, import, demo)", "adminToken", true);

    new Setting(containerEl)
      .setName("Live updates")
      .setDesc("Stream events (SSE) and fall back to polling when the stream is unavailable, or always poll")
      .addDropdown((dropdown) =>
        dropdown
          .addOptions({ stream: "Stream (SSE)", poll: "Poll" })
          .setValue(settings.liveUpdates)
          .onChange(async (value) => {
            settings.liveUpdates = value === "poll" ? "poll" : "stream";
            await save();
          }),
      );

    new Setting(containerEl)
      .setName("Refresh every (seconds)")
      .setDesc("Polling interval, and how often task notes are synced with the server (at least 5)")
      .addText((input) =>
        input.setValue(String(settings.pollSeconds)).onChange(async (value) => {
          const seconds = Number(value);
          if (Number.isFinite(seconds) && seconds >= 5) {
            settings.pollSeconds = Math.round(seconds);
            await save();
          }
        }),
      );

    text("Task notes folder", "Each leased task becomes a note here", "taskFolder", false, normaliseFolder);
  }
}
