/** OWP Pool for Obsidian: work the pool from a vault. Wires settings, client, task notes, views and commands. */

import { Notice, Plugin, TFile, WorkspaceLeaf } from "obsidian";
import { OwpClient, Offer, Task, WorkerReport, WorkerState, describeError } from "./api";
import { ChoiceModal, DeclineModal, PrUrlModal, RegisterModal, TrustTierModal } from "./modals";
import { HeldTask, TaskNotes } from "./notes";
import { DEFAULT_SETTINGS, OwpSettingTab, OwpSettings, loadSettings } from "./settings";
import { AdminView, VIEW_ADMIN } from "./views/admin";
import { PoolView, VIEW_POOL } from "./views/pool";
import { VIEW_WORK, WorkView } from "./views/work";

const NEXT_STATE: Record<WorkerState, WorkerState> = { idle: "working", working: "paused", paused: "idle" };

export default class OwpPlugin extends Plugin {
  override settings: OwpSettings = { ...DEFAULT_SETTINGS };
  client!: OwpClient;
  notes!: TaskNotes;
  /** The last answers the work view shows. */
  offers: Offer[] = [];
  whyNoOffers = "";
  held: HeldTask[] = [];
  connection = "";
  private statusBar: HTMLElement | null = null;
  private heartbeatTimer: number | null = null;
  private syncTimer: number | null = null;

  override async onload(): Promise<void> {
    this.settings = loadSettings(await this.loadData());
    this.client = new OwpClient(() => this.settings);
    this.notes = new TaskNotes(this.app, this.client, () => this.settings.taskFolder, () => this.settings.workerId, (m) => this.notify(m));

    this.registerView(VIEW_WORK, (leaf) => new WorkView(leaf, this));
    this.registerView(VIEW_POOL, (leaf) => new PoolView(leaf, this));
    this.registerView(VIEW_ADMIN, (leaf) => new AdminView(leaf, this));
    this.addSettingTab(new OwpSettingTab(this.app, this));

    this.statusBar = this.addStatusBarItem();
    this.statusBar.addClass("owp-status", "mod-clickable");
    this.statusBar.setAttr("aria-label", "OWP worker status: click to switch idle → working → paused");
    this.registerDomEvent(this.statusBar, "click", () => void this.setWorkerStatus(NEXT_STATE[this.settings.workerStatus]));
    this.renderStatusBar();

    this.addRibbonIcon("list-checks", "OWP: offers and leases", () => void this.openView(VIEW_WORK));
    this.addCommands();
    this.registerEvent(
      this.app.metadataCache.on("changed", (file, _data, cache) => {
        this.notes.onNoteChanged(file, cache.frontmatter).catch((error) => this.fail(error));
      }),
    );
    this.restartTimers();
    this.app.workspace.onLayoutReady(() => void this.tick());
  }

  override onunload(): void {
    this.statusBar = null;
  }

  async saveSettings(): Promise<void> {
    await this.saveData(this.settings);
    this.restartTimers();
    this.renderStatusBar();
  }

  /** Heartbeat and note sync run while Obsidian is open; registerInterval clears them on unload. */
  restartTimers(): void {
    if (this.heartbeatTimer !== null) window.clearInterval(this.heartbeatTimer);
    if (this.syncTimer !== null) window.clearInterval(this.syncTimer);
    this.heartbeatTimer = this.registerInterval(window.setInterval(() => void this.heartbeat(), this.settings.heartbeatSeconds * 1000));
    this.syncTimer = this.registerInterval(window.setInterval(() => void this.syncNotes(false), this.settings.pollSeconds * 1000));
  }

  private async tick(): Promise<void> {
    await this.heartbeat();
    await this.syncNotes(false);
  }

  // ------------------------------------------------------------ worker

  get registered(): boolean {
    return Boolean(this.settings.workerToken && this.settings.workerId);
  }

  async heartbeat(): Promise<boolean> {
    if (!this.settings.workerToken) return false;
    try {
      await this.client.heartbeat(this.settings.workerStatus);
      this.connection = "";
      return true;
    } catch (error) {
      this.connection = describeError(error);
      return false;
    } finally {
      this.renderStatusBar();
    }
  }

  async setWorkerStatus(status: WorkerState): Promise<void> {
    if (!this.settings.workerToken) {
      this.notify("OWP: register as a worker first (OWP: Register as a worker)");
      return;
    }
    this.settings.workerStatus = status;
    await this.saveData(this.settings);
    this.renderStatusBar();
    if (await this.heartbeat()) this.notify(`OWP: you are ${status}`);
    else this.notify(this.connection);
  }

  renderStatusBar(): void {
    if (!this.statusBar) return;
    const text = !this.settings.workerToken ? "OWP: not registered" : `OWP: ${this.settings.workerStatus}${this.connection ? " (offline)" : ""}`;
    this.statusBar.setText(text);
    this.statusBar.setAttr("title", this.connection || "Click to switch idle → working → paused");
    this.statusBar.toggleClass("owp-offline", Boolean(this.connection));
  }

  openRegisterModal(): void {
    new RegisterModal(this.app, async (body) => {
      try {
        const registered = await this.client.register(body);
        this.settings.workerId = registered.worker_id;
        this.settings.workerToken = registered.token;
        await this.saveSettings();
        this.notify(`OWP: registered as ${registered.worker_id}; your token is saved in the plugin settings`);
        await this.heartbeat();
        return true;
      } catch (error) {
        this.fail(error);
        return false;
      }
    }).open();
  }

  // ------------------------------------------------------------ offers and leases

  async refreshOffers(): Promise<Offer[]> {
    const answer = await this.client.offers();
    this.offers = answer.offers;
    this.whyNoOffers = answer.why_none?.summary ?? "";
    this.refreshViews(VIEW_WORK);
    return this.offers;
  }

  async acceptOffer(offer: Offer): Promise<void> {
    try {
      const accepted = await this.client.accept(offer.offer_id);
      this.offers = this.offers.filter((o) => o.offer_id !== offer.offer_id);
      this.notify(`OWP: leased ${offer.title}; the lease ends ${new Date(accepted.lease_expires_at).toLocaleString()}`);
      await this.syncNotes(true);
    } catch (error) {
      this.fail(error);
    }
  }

  declineOffer(offer: Offer): void {
    new DeclineModal(this.app, `${offer.repo}: ${offer.title}`, async ({ reason, note }) => {
      try {
        await this.client.decline(offer.offer_id, reason, note);
        this.offers = this.offers.filter((o) => o.offer_id !== offer.offer_id);
        this.refreshViews(VIEW_WORK);
        this.notify(`OWP: declined ${offer.title}`);
        return true;
      } catch (error) {
        this.fail(error);
        return false;
      }
    }).open();
  }

  async leaseWork(): Promise<void> {
    try {
      const work = await this.client.leaseWork();
      this.notify(`OWP: you hold ${work.leases.length} lease${work.leases.length === 1 ? "" : "s"}`);
      await this.syncNotes(true);
    } catch (error) {
      this.fail(error);
    }
  }

  async renew(held: HeldTask): Promise<void> {
    if (!held.leaseId) {
      this.notify(`OWP: ${held.task.task_id} has no active lease to renew`);
      return;
    }
    try {
      const renewed = await this.client.renew(held.leaseId);
      held.leaseExpiresAt = renewed.lease_expires_at;
      await this.notes.setLeaseExpiry(held.task.task_id, renewed.lease_expires_at);
      this.refreshViews(VIEW_WORK);
      const cap = new Date(renewed.renewable_until).toLocaleString();
      this.notify(`OWP: lease renewed until ${new Date(renewed.lease_expires_at).toLocaleString()} (renewable until ${cap})`);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Reports a status; pr_opened asks for the PR URL first. */
  report(task: Task, status: WorkerReport): void {
    if (status === "pr_opened") {
      new PrUrlModal(this.app, async ({ prUrl }) => this.sendReport(task, status, prUrl)).open();
      return;
    }
    void this.sendReport(task, status);
  }

  private async sendReport(task: Task, status: WorkerReport, prUrl?: string): Promise<boolean> {
    try {
      await this.notes.report(task.task_id, status, prUrl);
      await this.syncNotes(true);
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  /** Syncs the task notes; `loud` shows errors (the timer stays quiet and marks the status bar instead). */
  async syncNotes(loud: boolean): Promise<void> {
    if (!this.registered) return;
    try {
      const result = await this.notes.sync();
      this.held = result.held;
      this.connection = "";
      if (result.created.length) this.notify(`OWP: new task note${result.created.length > 1 ? "s" : ""}: ${result.created.join(", ")}`);
    } catch (error) {
      this.connection = describeError(error);
      if (loud) this.fail(error);
    }
    this.renderStatusBar();
    this.refreshViews(VIEW_WORK);
  }

  // ------------------------------------------------------------ admin

  async importFromNote(file: TFile | null): Promise<void> {
    if (!file) {
      this.notify("OWP: open the YAML note to import first");
      return;
    }
    try {
      const report = await this.client.importTasks(yamlOfNote(await this.app.vault.read(file)));
      const rejected = report.entries.filter((e) => e.outcome === "rejected");
      this.notify(
        `OWP import: ${report.created} created, ${report.updated} updated, ${report.unchanged} unchanged, ${report.rejected} rejected` +
          (rejected.length ? ` (first: #${rejected[0].index} ${rejected[0].errors.join("; ")})` : ""),
      );
      await this.reloadViews(VIEW_POOL);
    } catch (error) {
      this.fail(error);
    }
  }

  async startDemo(): Promise<void> {
    try {
      await this.client.startDemo();
      this.notify("OWP: demo started; the admin view shows its progress");
      await this.openView(VIEW_ADMIN);
      await this.reloadViews(VIEW_ADMIN);
    } catch (error) {
      this.fail(error);
    }
  }

  changeTrustTier(workerId: string, current: string): void {
    const tier = current === "untrusted" || current === "trusted" ? current : "basic";
    new TrustTierModal(this.app, workerId, tier, async ({ tier: next, reason }) => {
      try {
        await this.client.setTrustTier(workerId, next, reason);
        this.notify(`OWP: ${workerId} is now ${next}`);
        await this.reloadViews(VIEW_ADMIN);
        return true;
      } catch (error) {
        this.fail(error);
        return false;
      }
    }).open();
  }

  // ------------------------------------------------------------ views, notices

  async openView(type: string): Promise<void> {
    const existing = this.app.workspace.getLeavesOfType(type);
    const leaf: WorkspaceLeaf | null = existing[0] ?? this.app.workspace.getRightLeaf(false);
    if (!leaf) return;
    if (!existing.length) await leaf.setViewState({ type, active: true });
    this.app.workspace.revealLeaf(leaf);
  }

  /** Redraws open views of a type from what they already hold. */
  refreshViews(type: string): void {
    for (const leaf of this.app.workspace.getLeavesOfType(type)) {
      const view = leaf.view as unknown as { render?: () => void };
      view.render?.();
    }
  }

  /** Open views of a type ask the server again (after a change they show). */
  async reloadViews(type: string): Promise<void> {
    for (const leaf of this.app.workspace.getLeavesOfType(type)) {
      const view = leaf.view as unknown as { reload?: () => Promise<void> };
      await view.reload?.();
    }
  }

  notify(message: string): void {
    new Notice(message, 8000);
  }

  fail(error: unknown): void {
    new Notice(describeError(error), 12000);
  }

  /** The held task of the active note, for the commands that act on "this task". */
  private activeTask(): HeldTask | null {
    const file = this.app.workspace.getActiveFile();
    const taskId = file ? this.app.metadataCache.getFileCache(file)?.frontmatter?.task_id : undefined;
    const held = this.held.find((h) => h.task.task_id === taskId);
    if (!held) this.notify("OWP: open the note of a task you hold (sync with “OWP: Sync task notes”)");
    return held ?? null;
  }

  private chooseOffer(then: (offer: Offer) => void): void {
    this.refreshOffers()
      .then((offers) => {
        if (!offers.length) {
          this.notify(`OWP: ${this.whyNoOffers || "no offers right now"}`);
          return;
        }
        const choices = offers.map((o) => ({ label: o.title, detail: `${o.repo} · ${o.estimate_points} pts`, value: o }));
        new ChoiceModal(this.app, "Choose an offer", choices, then).open();
      })
      .catch((error) => this.fail(error));
  }

  private addCommands(): void {
    const commands: [string, string, () => void][] = [
      ["open-work", "Open offers and leases", () => void this.openView(VIEW_WORK)],
      ["open-pool", "Open pool status", () => void this.openView(VIEW_POOL)],
      ["open-admin", "Open admin view", () => void this.openView(VIEW_ADMIN)],
      ["register", "Register as a worker", () => this.openRegisterModal()],
      ["status-idle", "Set my status: idle", () => void this.setWorkerStatus("idle")],
      ["status-working", "Set my status: working", () => void this.setWorkerStatus("working")],
      ["status-paused", "Set my status: paused", () => void this.setWorkerStatus("paused")],
      ["get-offers", "Get offers", () => void this.refreshOffers().then(() => this.openView(VIEW_WORK)).catch((e) => this.fail(e))],
      ["accept-offer", "Accept an offer…", () => this.chooseOffer((offer) => void this.acceptOffer(offer))],
      ["decline-offer", "Decline an offer…", () => this.chooseOffer((offer) => this.declineOffer(offer))],
      ["lease-work", "Lease work into my free capacity", () => void this.leaseWork()],
      ["sync-notes", "Sync task notes", () => void this.syncNotes(true)],
      ["renew-lease", "Renew the lease of this task", () => withTask(this.activeTask(), (h) => void this.renew(h))],
      ["report-in-progress", "Report this task: in progress", () => withTask(this.activeTask(), (h) => this.report(h.task, "in_progress"))],
      ["report-blocked", "Report this task: blocked", () => withTask(this.activeTask(), (h) => this.report(h.task, "blocked"))],
      ["report-pr-opened", "Report this task: PR opened…", () => withTask(this.activeTask(), (h) => this.report(h.task, "pr_opened"))],
      ["report-released", "Release this task", () => withTask(this.activeTask(), (h) => this.report(h.task, "released"))],
      ["import-tasks", "Import tasks from this YAML note", () => void this.importFromNote(this.app.workspace.getActiveFile())],
      ["start-demo", "Start the demo scenario", () => void this.startDemo()],
      ["change-trust-tier", "Change a worker's trust tier…", () => void this.chooseWorkerForTier()],
    ];
    for (const [id, name, callback] of commands) this.addCommand({ id, name, callback });
  }

  private async chooseWorkerForTier(): Promise<void> {
    try {
      const workers = await this.client.workers();
      const choices = workers.map((w) => ({ label: w.name, detail: `${w.worker_id} · ${w.trust_tier}`, value: w }));
      new ChoiceModal(this.app, "Choose a worker", choices, (w) => this.changeTrustTier(w.worker_id, w.trust_tier)).open();
    } catch (error) {
      this.fail(error);
    }
  }
}

function withTask(held: HeldTask | null, act: (held: HeldTask) => void): void {
  if (held) act(held);
}

/** The YAML to import from a note: its first ```yaml block, or the whole note. */
export function yamlOfNote(text: string): string {
  const fenced = /```ya?ml\s*\n([\s\S]*?)```/.exec(text);
  return fenced ? fenced[1] : text;
}
