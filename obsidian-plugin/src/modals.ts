/** The plugin's dialogs: register as a worker, decline an offer, PR URL, trust tier change. */

import { App, Modal, Setting } from "obsidian";
import type { RejectReason, Schemas, TrustName } from "./api";
import { rejectReasonValues, trustNameValues } from "./generated/openapi";

export const REASON_LABELS: Record<RejectReason, string> = {
  insufficient_time: "Not enough time",
  unclear_requirements: "Requirements unclear",
  skill_mismatch: "Skills do not fit",
  other: "Other",
};

/** A modal with a form: `fields` builds it; on the button, `value()` gives the value or (a string) what to fix,
 * and `onSubmit` runs, closing the modal when it succeeds. */
abstract class FormModal<T> extends Modal {
  protected abstract readonly heading: string;
  protected abstract readonly action: string;

  constructor(
    app: App,
    private readonly onSubmit: (value: T) => Promise<boolean>,
  ) {
    super(app);
  }

  protected abstract fields(el: HTMLElement): void;
  protected abstract value(): T | string;

  override onOpen(): void {
    const { contentEl } = this;
    contentEl.empty();
    contentEl.addClass("owp-modal");
    this.titleEl.setText(this.heading);
    this.fields(contentEl);
    const error = contentEl.createDiv({ cls: "owp-error" });
    new Setting(contentEl).addButton((button) =>
      button
        .setButtonText(this.action)
        .setCta()
        .onClick(async () => {
          const value = this.value();
          if (typeof value === "string") {
            error.setText(value);
            return;
          }
          button.setDisabled(true);
          try {
            if (await this.onSubmit(value)) this.close();
          } finally {
            button.setDisabled(false);
          }
        }),
    );
  }

  override onClose(): void {
    this.contentEl.empty();
  }
}

export function parseSkills(text: string): string[] {
  return [...new Set(text.split(/[,\n]/).map((s) => s.trim().toLowerCase()).filter(Boolean))];
}

export class RegisterModal extends FormModal<Schemas["RegisterWorker"]> {
  protected readonly heading = "Register as an OWP worker";
  protected readonly action = "Register";
  private name = "";
  private handle = "";
  private skills = "";
  private capacity = "5";
  private concurrency = "1";

  protected fields(el: HTMLElement): void {
    el.createEl("p", { text: "The pool offers you tasks that fit your skills and capacity. Your token is saved in this plugin's settings." });
    new Setting(el).setName("Name").addText((t) => t.setPlaceholder("ann").onChange((v) => (this.name = v)));
    new Setting(el).setName("GitHub handle").setDesc("Optional").addText((t) => t.onChange((v) => (this.handle = v)));
    new Setting(el)
      .setName("Skills")
      .setDesc("Comma-separated, for example python, typescript, docs")
      .addText((t) => t.onChange((v) => (this.skills = v)));
    new Setting(el)
      .setName("Capacity (points)")
      .setDesc("How many estimate points you take on at once")
      .addText((t) => t.setValue(this.capacity).onChange((v) => (this.capacity = v)));
    new Setting(el)
      .setName("Concurrent tasks")
      .addText((t) => t.setValue(this.concurrency).onChange((v) => (this.concurrency = v)));
  }

  protected value(): Schemas["RegisterWorker"] | string {
    const capacity = Number(this.capacity);
    const concurrency = Number(this.concurrency);
    if (!this.name.trim()) return "Enter a name.";
    if (!Number.isInteger(capacity) || capacity < 1) return "Capacity is a whole number of points, at least 1.";
    if (!Number.isInteger(concurrency) || concurrency < 1) return "Concurrent tasks is a whole number, at least 1.";
    return {
      name: this.name.trim(),
      github_handle: this.handle.trim() || null,
      skills: parseSkills(this.skills),
      capacity_points: capacity,
      max_concurrent_tasks: concurrency,
    };
  }
}

export interface Decline {
  reason: RejectReason;
  note: string;
}

export class DeclineModal extends FormModal<Decline> {
  protected readonly heading = "Decline offer";
  protected readonly action = "Decline";
  private reason: RejectReason = rejectReasonValues[0];
  private note = "";

  constructor(app: App, private readonly title: string, onSubmit: (value: Decline) => Promise<boolean>) {
    super(app, onSubmit);
  }

  protected fields(el: HTMLElement): void {
    el.createEl("p", { text: this.title });
    new Setting(el).setName("Reason").addDropdown((d) => {
      for (const reason of rejectReasonValues) d.addOption(reason, REASON_LABELS[reason]);
      d.setValue(this.reason).onChange((v) => (this.reason = v as RejectReason));
    });
    new Setting(el).setName("Note").setDesc("Optional").addTextArea((t) => t.onChange((v) => (this.note = v)));
  }

  protected value(): Decline {
    return { reason: this.reason, note: this.note.trim() };
  }
}

export class PrUrlModal extends FormModal<{ prUrl: string }> {
  protected readonly heading = "Report the pull request";
  protected readonly action = "Report PR opened";
  private url = "";

  protected fields(el: HTMLElement): void {
    new Setting(el)
      .setName("Pull request URL")
      .addText((t) => t.setPlaceholder("https://github.com/owner/repo/pull/12").onChange((v) => (this.url = v.trim())));
  }

  protected value(): { prUrl: string } | string {
    return /^https?:\/\/\S+$/.test(this.url) ? { prUrl: this.url } : "Enter the pull request's http(s) URL.";
  }
}

export interface TierChange {
  tier: TrustName;
  reason: string;
}

export class TrustTierModal extends FormModal<TierChange> {
  protected readonly heading = "Change trust tier";
  protected readonly action = "Change tier";
  private reason = "";

  constructor(app: App, private readonly worker: string, private tier: TrustName, onSubmit: (value: TierChange) => Promise<boolean>) {
    super(app, onSubmit);
  }

  protected fields(el: HTMLElement): void {
    el.createEl("p", { text: `Worker ${this.worker}` });
    new Setting(el).setName("Tier").addDropdown((d) => {
      for (const tier of trustNameValues) d.addOption(tier, tier);
      d.setValue(this.tier).onChange((v) => (this.tier = v as TrustName));
    });
    new Setting(el).setName("Reason").setDesc("Recorded in the audit log").addText((t) => t.onChange((v) => (this.reason = v)));
  }

  protected value(): TierChange | string {
    return this.reason.trim() ? { tier: this.tier, reason: this.reason.trim() } : "Give a reason; it goes into the audit log.";
  }
}

export interface Choice<T> {
  label: string;
  detail?: string;
  value: T;
}

/** Pick one of a few items (an offer, a worker) for a palette command. */
export class ChoiceModal<T> extends Modal {
  constructor(
    app: App,
    private readonly heading: string,
    private readonly choices: Choice<T>[],
    private readonly onChoose: (value: T) => void,
  ) {
    super(app);
  }

  override onOpen(): void {
    const { contentEl } = this;
    contentEl.empty();
    contentEl.addClass("owp-modal");
    this.titleEl.setText(this.heading);
    const list = contentEl.createDiv({ cls: "owp-choices" });
    for (const choice of this.choices) {
      const button = list.createEl("button", { cls: "owp-choice", text: choice.label });
      if (choice.detail) button.createEl("small", { text: ` ${choice.detail}` });
      button.addEventListener("click", () => {
        this.close();
        this.onChoose(choice.value);
      });
    }
  }

  override onClose(): void {
    this.contentEl.empty();
  }
}
