/** Pool status: workers, tasks (filtered by repo, status, skill) and repo review budgets, kept live by the
 * event stream or by polling when the stream is unavailable. */

import type { Repo, Task, TaskStatusName, Worker } from "../api";
import { taskStatusNameValues } from "../generated/openapi";
import { FeedMode, LiveFeed } from "../live";
import { OwpView } from "./base";

export const VIEW_POOL = "owp-pool";

export interface PoolFilter {
  repo: string;
  status: TaskStatusName | "";
  skill: string;
}

export function filterTasks(tasks: Task[], filter: PoolFilter): Task[] {
  const skill = filter.skill.trim().toLowerCase();
  return tasks.filter(
    (t) =>
      (!filter.repo || t.repo === filter.repo) &&
      (!filter.status || t.status === filter.status) &&
      (!skill || t.required_skills.some((s) => s.toLowerCase() === skill)),
  );
}

export class PoolView extends OwpView {
  workers: Worker[] = [];
  tasks: Task[] = [];
  repos: Repo[] = [];
  filter: PoolFilter = { repo: "", status: "", skill: "" };
  feed: LiveFeed | null = null;
  private loadError: unknown = null;
  private pending: number | null = null;
  /** The read under way; `stale` asks for one more after it (something changed while it read). */
  private reading: Promise<void> | null = null;
  private stale = false;
  /** Whether a read has finished: until then, empty lists mean "not read yet", not "none". */
  private loaded = false;
  /** How far a read of several pages has come, shown while it runs. */
  private progress = "";
  private progressEl: HTMLElement | null = null;
  private mode: FeedMode = "stopped";
  private modeReason = "";

  getViewType(): string {
    return VIEW_POOL;
  }

  getDisplayText(): string {
    return "OWP pool status";
  }

  override getIcon(): string {
    return "activity";
  }

  override async onOpen(): Promise<void> {
    this.feed = new LiveFeed({
      credentials: () => this.plugin.settings,
      preferStream: () => this.plugin.settings.liveUpdates === "stream",
      pollSeconds: () => this.plugin.settings.pollSeconds,
      onChange: () => this.soon(),
      onMode: (mode, reason) => {
        this.mode = mode;
        this.modeReason = reason;
        this.render();
      },
      registerInterval: (id) => this.registerInterval(id),
    });
    this.feed.start();
  }

  override async onClose(): Promise<void> {
    this.feed?.stop();
    this.feed = null;
    if (this.pending !== null) window.clearTimeout(this.pending);
    this.pending = null;
    this.stale = false;
  }

  /** Coalesces bursts of events into one reload. */
  private soon(): void {
    if (this.pending !== null) return;
    this.pending = window.setTimeout(() => {
      this.pending = null;
      void this.reload();
    }, 300);
  }

  /** Reads the lists again, one read at a time: asked for during a read (an event arrived while the pages
   * came in), it reads once more after that read, so no change is missed and an older read never lands last. */
  reload(): Promise<void> {
    this.stale = true;
    this.reading ??= this.readWhileStale();
    return this.reading;
  }

  private async readWhileStale(): Promise<void> {
    try {
      while (this.stale) {
        this.stale = false;
        await this.read();
      }
    } finally {
      this.reading = null;
    }
  }

  private async read(): Promise<void> {
    const client = this.plugin.client;
    const arrived = new Map<string, number>();
    const progress = (list: string) => (count: number) => {
      arrived.set(list, count);
      this.progress = `reading the pool: ${[...arrived].map(([name, n]) => `${n} ${name}`).join(", ")} so far…`;
      this.progressEl?.setText(this.progress);
    };
    try {
      const [workers, tasks, repos] = await Promise.all([client.workers(progress("workers")), client.tasks({}, progress("tasks")), client.repos()]);
      this.workers = workers;
      this.tasks = tasks;
      this.repos = repos.repos;
      this.loadError = null;
    } catch (error) {
      this.loadError = error;
    }
    this.loaded = true;
    this.progress = "";
    this.render();
  }

  render(): void {
    const root = this.body();
    const head = root.createDiv({ cls: "owp-head" });
    const live = this.mode === "stream" ? "live" : this.mode === "poll" ? `polling every ${this.plugin.settings.pollSeconds} s` : "paused";
    head.createSpan({ cls: `owp-live owp-live-${this.mode}`, text: live });
    if (this.modeReason && this.mode !== "stream") head.createSpan({ cls: "owp-muted", text: ` (${this.modeReason})` });
    this.button(head, "Refresh", () => this.reload());
    this.progressEl = head.createSpan({ cls: "owp-muted owp-progress", text: this.progress });
    if (this.loadError) this.error(root, this.loadError);
    const empty = (none: string): string => (this.loaded ? none : "Reading the pool…");

    const online = this.workers.filter((w) => w.online);
    const workers = this.section(root, `Workers (${online.length} online of ${this.workers.length})`);
    this.table(
      workers,
      ["Name", "Status", "Skills", "Load", "Trust"],
      this.workers.map((w) => [w.name, w.status, w.skills.join(", "), `${w.points_in_use}/${w.capacity_points} pts`, w.trust_tier]),
      empty("No workers registered."),
    );

    const tasks = this.section(root, "Tasks");
    const filters = tasks.createDiv({ cls: "owp-filters" });
    const repoSelect = filters.createEl("select", { attr: { "aria-label": "repo" } });
    repoSelect.createEl("option", { text: "all repos", value: "" });
    for (const repo of this.repos) repoSelect.createEl("option", { text: repo.repo, value: repo.repo });
    repoSelect.value = this.filter.repo;
    this.registerDomEvent(repoSelect, "change", () => this.setFilter({ repo: repoSelect.value }));
    const statusSelect = filters.createEl("select", { attr: { "aria-label": "status" } });
    statusSelect.createEl("option", { text: "any status", value: "" });
    for (const status of taskStatusNameValues) statusSelect.createEl("option", { text: status, value: status });
    statusSelect.value = this.filter.status;
    this.registerDomEvent(statusSelect, "change", () => this.setFilter({ status: statusSelect.value as TaskStatusName | "" }));
    const skillInput = filters.createEl("input", { type: "text", placeholder: "skill", value: this.filter.skill });
    this.registerDomEvent(skillInput, "change", () => this.setFilter({ skill: skillInput.value }));
    const shown = filterTasks(this.tasks, this.filter);
    const names = new Map(this.workers.map((w) => [w.worker_id, w.name]));
    this.table(
      tasks,
      ["Task", "Repo", "Status", "Points", "Skills", "Worker"],
      shown.map((t) => [t.title, t.repo, t.status, t.estimate_points, t.required_skills.join(", "), t.worker_id ? (names.get(t.worker_id) ?? t.worker_id) : null]),
      this.tasks.length ? "No task matches the filter." : empty("No tasks in the pool."),
    );

    const repos = this.section(root, "Review budgets");
    this.table(
      repos,
      ["Repo", "Open PRs", "Leases", "Offers", "In flight / max"],
      this.repos.map((r) => [r.repo, r.budget.open_prs, r.budget.leases, r.budget.offers, `${r.budget.in_flight}/${r.budget.max_open_prs}`]),
      empty("No repos configured."),
    );
  }

  setFilter(change: Partial<PoolFilter>): void {
    this.filter = { ...this.filter, ...change };
    this.render();
  }
}
