/** What the plugin's views share: a header, sections, small tables and in-place error lines (all via createEl). */

import { ItemView, WorkspaceLeaf } from "obsidian";
import { describeError } from "../api";
import type OwpPlugin from "../main";

export abstract class OwpView extends ItemView {
  constructor(
    leaf: WorkspaceLeaf,
    protected readonly plugin: OwpPlugin,
  ) {
    super(leaf);
  }

  /** Redraws from the plugin's last answers; cheap, no network. */
  abstract render(): void;

  protected body(): HTMLElement {
    const root = this.contentEl;
    root.empty();
    root.addClass("owp-view");
    return root;
  }

  protected section(parent: HTMLElement, title: string): HTMLElement {
    const section = parent.createDiv({ cls: "owp-section" });
    section.createEl("h4", { text: title });
    return section;
  }

  protected error(parent: HTMLElement, error: unknown): void {
    parent.createDiv({ cls: "owp-error", text: describeError(error) });
  }

  protected button(parent: HTMLElement, text: string, onClick: () => unknown, cta = false): HTMLButtonElement {
    const button = parent.createEl("button", { text, cls: cta ? "mod-cta" : "" });
    this.registerDomEvent(button, "click", () => void onClick());
    return button;
  }

  protected table(parent: HTMLElement, headers: string[], rows: (string | number | null | undefined)[][], empty: string): HTMLTableElement | null {
    if (!rows.length) {
      parent.createDiv({ cls: "owp-empty", text: empty });
      return null;
    }
    const table = parent.createEl("table", { cls: "owp-table" });
    const head = table.createEl("thead").createEl("tr");
    for (const header of headers) head.createEl("th", { text: header });
    const body = table.createEl("tbody");
    for (const row of rows) {
      const tr = body.createEl("tr");
      for (const cell of row) tr.createEl("td", { text: cell === null || cell === undefined ? "—" : String(cell) });
    }
    return table;
  }
}
