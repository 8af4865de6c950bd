/** Admin (with the admin token): reputation and trust tier per worker, pool analytics, YAML import, demo. */

import type { Schemas, Worker } from "../api";
import { OwpView } from "./base";

export const VIEW_ADMIN = "owp-admin";

/** Flattens an answer into label/value rows for display (nested objects become dotted labels). */
export function flatten(value: unknown, prefix = ""): [string, string][] {
  if (value === null || value === undefined) return [[prefix || "value", "—"]];
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return [[prefix || "value", value.join(", ") || "—"]];
    return value.flatMap((v, i) => flatten(v, `${prefix}[${i}]`));
  }
  if (typeof value === "object") {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  if (typeof value === "number" && !Number.isInteger(value)) return [[prefix || "value", value.toFixed(2)]];
  return [[prefix || "value", String(value)]];
}

interface Loaded<T> {
  value?: T;
  error?: unknown;
}

async function load<T>(call: () => Promise<T>): Promise<Loaded<T>> {
  try {
    return { value: await call() };
  } catch (error) {
    return { error };
  }
}

export class AdminView extends OwpView {
  workers: Loaded<Worker[]> = {};
  /** Every worker's reputation by worker id, read in pages (GET /v1/workers/reputation), not one call per worker. */
  reputation: Loaded<Map<string, Schemas["Reputation"]>> = {};
  analytics: Loaded<Schemas["PoolAnalytics"]> = {};
  demo: Loaded<Schemas["DemoStatus"]> = {};
  private demoPoller: number | null = null;

  getViewType(): string {
    return VIEW_ADMIN;
  }

  getDisplayText(): string {
    return "OWP admin";
  }

  override getIcon(): string {
    return "shield";
  }

  override async onOpen(): Promise<void> {
    this.render();
    await this.reload();
  }

  override async onClose(): Promise<void> {
    if (this.demoPoller !== null) window.clearInterval(this.demoPoller);
    this.demoPoller = null;
  }

  async reload(): Promise<void> {
    const client = this.plugin.client;
    if (!this.plugin.settings.adminToken) return this.render();
    [this.workers, this.reputation] = await Promise.all([
      load(() => client.workers()),
      load(async () => new Map((await client.reputations()).map((r) => [r.worker_id, r]))),
    ]);
    this.analytics = await load(() => client.poolAnalytics("7d"));
    await this.reloadDemo();
  }

  private async reloadDemo(): Promise<void> {
    this.demo = await load(() => this.plugin.client.demoStatus());
    this.render();
  }

  /** Polls the demo's progress every 2 s while this view is open, once the demo was started from here. */
  async startDemo(): Promise<void> {
    await this.plugin.startDemo();
    if (this.demoPoller === null) this.demoPoller = this.registerInterval(window.setInterval(() => void this.reloadDemo(), 2000));
    await this.reloadDemo();
  }

  render(): void {
    const root = this.body();
    const plugin = this.plugin;
    if (!plugin.settings.adminToken) {
      root.createEl("p", { text: "Set the admin token in Settings → OWP Pool to manage the pool from here." });
      return;
    }
    const head = root.createDiv({ cls: "owp-buttons" });
    this.button(head, "Refresh", () => this.reload());
    this.button(head, "Import tasks from the active note", () => plugin.importFromNote(this.app.workspace.getActiveFile()));

    const demo = this.section(root, "Demo");
    this.button(demo, "Start the demo scenario", () => this.startDemo(), true);
    if (this.demo.error) this.error(demo, this.demo.error);
    else if (this.demo.value) {
      const { state, simulated_seconds, counts, tasks } = this.demo.value;
      this.table(demo, ["Demo", ""], flatten({ state, simulated_seconds, counts, tasks }), "");
    }

    const workers = this.section(root, "Workers: reputation and trust");
    if (this.workers.error) this.error(workers, this.workers.error);
    else if (this.reputation.error) this.error(workers, this.reputation.error);
    for (const worker of this.workers.value ?? []) {
      const row = workers.createDiv({ cls: "owp-card" });
      row.createDiv({ cls: "owp-title", text: `${worker.name} (${worker.worker_id})` });
      const rep = this.reputation.value?.get(worker.worker_id);  // none: registered between the two reads
      const score = rep ? rep.reputation_score.toFixed(1) : "—";
      const done = rep ? ` · ${rep.metrics.total_tasks} tasks` : "";
      row.createDiv({ cls: "owp-muted", text: `trust: ${worker.trust_tier} · reputation: ${score}${done} · ${worker.status}` });
      this.button(row, "Change tier…", () => plugin.changeTrustTier(worker.worker_id, worker.trust_tier));
    }
    if (this.workers.value && !this.workers.value.length) workers.createDiv({ cls: "owp-empty", text: "No workers registered." });

    const analytics = this.section(root, "Analytics (7 days)");
    if (this.analytics.error) this.error(analytics, this.analytics.error);
    else if (this.analytics.value) {
      const { repos, metrics } = this.analytics.value;
      this.table(analytics, ["Metric", "Value"], flatten({ repos, ...metrics }), "No analytics yet.");
    }
  }
}
