/** Offers (accept/decline, live countdown) and leases (deadline, renew, status reports) of this worker. */

import { WORKER_REPORTS, WorkerReport } from "../api";
import { Countdowns } from "../countdown";
import { OwpView } from "./base";

export const VIEW_WORK = "owp-work";

const REPORT_LABELS: Record<WorkerReport, string> = {
  in_progress: "In progress",
  blocked: "Blocked",
  pr_opened: "PR opened…",
  released: "Release",
};

export class WorkView extends OwpView {
  readonly countdowns = new Countdowns();
  private loadError: unknown = null;

  getViewType(): string {
    return VIEW_WORK;
  }

  getDisplayText(): string {
    return "OWP offers and leases";
  }

  override getIcon(): string {
    return "list-checks";
  }

  override async onOpen(): Promise<void> {
    this.registerInterval(window.setInterval(() => this.countdowns.tick(), 1000));
    this.render();
    await this.reload();
  }

  override async onClose(): Promise<void> {
    this.countdowns.clear();
  }

  /** Asks the server for offers and syncs the leases, then redraws. */
  async reload(): Promise<void> {
    if (!this.plugin.registered) return;
    try {
      this.loadError = null;
      await this.plugin.refreshOffers();
    } catch (error) {
      this.loadError = error;
    }
    await this.plugin.syncNotes(false);
    this.render();
  }

  render(): void {
    const root = this.body();
    this.countdowns.clear();
    const plugin = this.plugin;
    const head = root.createDiv({ cls: "owp-head" });
    if (!plugin.registered) {
      head.createEl("p", { text: "Register as a worker to receive offers." });
      this.button(head, "Register as a worker…", () => plugin.openRegisterModal(), true);
      return;
    }
    head.createSpan({ cls: "owp-muted", text: `${plugin.settings.workerId} · ${plugin.settings.workerStatus}` });
    const bar = head.createDiv({ cls: "owp-buttons" });
    this.button(bar, "Get offers", () => this.reload(), true);
    this.button(bar, "Lease work now", () => plugin.leaseWork());
    this.button(bar, "Sync notes", () => plugin.syncNotes(true));
    if (plugin.connection) head.createDiv({ cls: "owp-error", text: plugin.connection });

    const offers = this.section(root, `Offers (${plugin.offers.length})`);
    if (this.loadError) this.error(offers, this.loadError);
    if (!plugin.offers.length) offers.createDiv({ cls: "owp-empty", text: plugin.whyNoOffers || "No offers." });
    for (const offer of plugin.offers) {
      const card = offers.createDiv({ cls: "owp-card owp-offer" });
      const title = card.createDiv({ cls: "owp-title" });
      if (offer.url) title.createEl("a", { text: offer.title, href: offer.url });
      else title.setText(offer.title);
      card.createDiv({
        cls: "owp-muted",
        text: `${offer.repo} · ${offer.estimate_points} pts · ${offer.priority}${offer.required_skills.length ? ` · ${offer.required_skills.join(", ")}` : ""}`,
      });
      this.countdowns.add(card.createDiv({ cls: "owp-countdown" }), offer.expires_at, "offer expires in", "offer expired: ask for new offers");
      const buttons = card.createDiv({ cls: "owp-buttons" });
      this.button(buttons, "Accept", () => plugin.acceptOffer(offer), true);
      this.button(buttons, "Decline…", () => plugin.declineOffer(offer));
    }

    const leases = this.section(root, `My tasks (${plugin.held.length})`);
    if (!plugin.held.length) leases.createDiv({ cls: "owp-empty", text: "You hold no tasks." });
    for (const held of plugin.held) {
      const { task } = held;
      const card = leases.createDiv({ cls: "owp-card owp-lease" });
      const title = card.createDiv({ cls: "owp-title" });
      const note = plugin.notes.notes().get(task.task_id);
      if (note) {
        const link = title.createEl("a", { text: task.title, href: "#" });
        this.registerDomEvent(link, "click", (event) => {
          event.preventDefault();
          void this.app.workspace.getLeaf(false).openFile(note);
        });
      } else title.setText(task.title);
      card.createDiv({ cls: "owp-muted", text: `${task.repo} · ${task.estimate_points} pts · ${task.status}` });
      if (held.leaseExpiresAt) this.countdowns.add(card.createDiv({ cls: "owp-countdown" }), held.leaseExpiresAt, "lease ends in", "lease expired");
      else if (task.pr_url) card.createEl("a", { text: task.pr_url, href: task.pr_url });
      const buttons = card.createDiv({ cls: "owp-buttons" });
      if (held.leaseId) this.button(buttons, "Renew", () => plugin.renew(held));
      for (const status of WORKER_REPORTS) {
        if (task.status === "pr_opened" && (status === "in_progress" || status === "blocked")) continue;
        this.button(buttons, REPORT_LABELS[status], () => plugin.report(task, status));
      }
    }
  }
}
