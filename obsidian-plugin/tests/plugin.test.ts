/** The plugin as a person uses it, against a real server: register from the modal, the status-bar toggle,
 * offers with countdown and accept/decline, task notes, commands on the active note, pool and admin views. */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { App, ButtonComponent, DropdownComponent, Modal, Notice, Setting, TextComponent, TFile, splitFrontmatter } from "obsidian";
import OwpPlugin from "../src/main";
import { rejectReasonValues } from "../src/generated/openapi";
import { VIEW_ADMIN } from "../src/views/admin";
import { VIEW_POOL, filterTasks, type PoolView } from "../src/views/pool";
import { VIEW_WORK } from "../src/views/work";
import { ADMIN_TOKEN, PoolServer } from "./pool-server";
import { admin, eventually } from "./helpers";

let server: PoolServer;
let app: App;
let plugin: OwpPlugin;

beforeAll(async () => {
  server = await PoolServer.start();
  app = new App();
  plugin = new OwpPlugin(app as never, { id: "owp-pool", name: "OWP Pool", version: "0.1.0" });
  (plugin as unknown as { data: unknown }).data = { baseUrl: server.url, liveUpdates: "stream", taskFolder: "Pool" };
  await (plugin as unknown as { enable(): Promise<void> }).enable();
});

afterAll(async () => {
  plugin?.unload();
  await server?.stop();
});

function run(command: string): void {
  const found = (plugin as unknown as { commands: Map<string, { callback: () => void }> }).commands.get(`owp-pool:${command}`);
  if (!found) throw new Error(`no command ${command}`);
  found.callback();
}

function settingsIn(el: HTMLElement): Map<string, Setting> {
  return new Map(Setting.all.filter((s) => el.contains(s.settingEl)).map((s) => [s.nameEl.textContent ?? "", s]));
}

function lastModal<T extends Modal>(): T {
  return Modal.opened[Modal.opened.length - 1] as T;
}

async function submit(modal: Modal): Promise<void> {
  const buttons = [...settingsIn(modal.contentEl).values()].flatMap((s) => s.components).filter((c) => c instanceof ButtonComponent);
  await (buttons[0] as ButtonComponent).click();
}

function view(type: string): HTMLElement {
  const leaf = app.workspace.getLeavesOfType(type)[0];
  if (!leaf?.view) throw new Error(`${type} is not open`);
  return leaf.view.contentEl;
}

function buttonIn(el: HTMLElement, text: string): HTMLButtonElement {
  const button = [...el.querySelectorAll("button")].find((b) => b.textContent === text);
  if (!button) throw new Error(`no button ${text} in ${el.textContent}`);
  return button as HTMLButtonElement;
}

describe("the plugin against a real pool", () => {
  it("registers from the modal and toggles its status from the status bar", async () => {
    expect(app.statusBarEl.textContent).toBe("OWP: not registered");
    run("register");
    const modal = lastModal();
    const fields = settingsIn(modal.contentEl);
    await (fields.get("Submit")?.components[0] as TextComponent | undefined)?.enter("x");
    await submit(modal);
    expect(modal.contentEl.querySelector(".owp-error")?.textContent).toBe("Enter a name.");
    await (fields.get("Name")!.components[0] as TextComponent).enter("vault-worker");
    await (fields.get("Skills")!.components[0] as TextComponent).enter("Obsidian, typescript");
    await (fields.get("Capacity (points)")!.components[0] as TextComponent).enter("6");
    await (fields.get("Concurrent tasks")!.components[0] as TextComponent).enter("3");
    await submit(modal);
    expect(Modal.opened).not.toContain(modal);
    expect(plugin.settings.workerId).toMatch(/^w_/);
    expect(plugin.settings.workerToken.length).toBeGreaterThan(20);
    expect(app.statusBarEl.textContent).toBe("OWP: idle");
    const me = await admin(server).worker(plugin.settings.workerId);
    expect(me).toMatchObject({ name: "vault-worker", capacity_points: 6, max_concurrent_tasks: 3, online: true });

    (app.statusBarEl.firstElementChild as HTMLElement).click();
    await eventually(async () => expect((await admin(server).worker(plugin.settings.workerId)).status).toBe("working"));
    expect(app.statusBarEl.textContent).toBe("OWP: working");
    run("status-idle");
    await eventually(async () => expect((await admin(server).worker(plugin.settings.workerId)).status).toBe("idle"));
  });

  it("shows offers with a countdown, accepts one into a task note, and declines one with a reason", async () => {
    await server.repo("vault/app", 5);
    const first = await server.task("vault/app", "Write the sync", { required_skills: ["obsidian"], estimate_points: 2 });
    const second = await server.task("vault/app", "Style the view", { required_skills: ["typescript"], estimate_points: 2 });
    run("open-work");
    await eventually(() => expect(view(VIEW_WORK).querySelectorAll(".owp-offer")).toHaveLength(2));
    const work = view(VIEW_WORK);
    const cards = [...work.querySelectorAll(".owp-offer")];
    const firstCard = cards.find((c) => c.textContent?.includes("Write the sync")) as HTMLElement;
    expect(firstCard.querySelector(".owp-countdown")?.textContent).toMatch(/^offer expires in [45]m \d\ds$/);

    buttonIn(firstCard, "Accept").click();
    await eventually(() => expect(plugin.held.map((h) => h.task.task_id)).toEqual([first]));
    const note = app.vault.getMarkdownFiles().find((f) => f.path.startsWith(`Pool/${first}`)) as TFile;
    expect(splitFrontmatter(app.vault.contents.get(note.path)!).frontmatter).toMatchObject({ task_id: first, status: "leased", points: 2 });
    await eventually(() => expect(view(VIEW_WORK).querySelector(".owp-lease .owp-countdown")?.textContent).toMatch(/^lease ends in 3h 5\dm$/));
    expect(Notice.shown.some((m) => m.startsWith("OWP: leased Write the sync"))).toBe(true);

    const secondCard = [...view(VIEW_WORK).querySelectorAll(".owp-offer")].find((c) => c.textContent?.includes("Style the view")) as HTMLElement;
    buttonIn(secondCard, "Decline…").click();
    const decline = lastModal();
    const reason = settingsIn(decline.contentEl).get("Reason")!.components[0] as DropdownComponent;
    expect([...reason.selectEl.options].map((o) => o.value)).toEqual([...rejectReasonValues]);
    await reason.enter("skill_mismatch");
    await submit(decline);
    const events = await admin(server).send<{ events: { target: string; details: Record<string, unknown> }[] }>(
      "GET", "/v1/audit/events", { query: { type: "offer.rejected" }, as: "admin" });
    expect(events.events.find((e) => e.target === second)?.details.reason).toBe("skill_mismatch");
  });

  it("reports from palette commands on the active task note", async () => {
    const held = plugin.held[0];
    const note = plugin.notes.notes().get(held.task.task_id)!;
    app.workspace.activeFile = note;
    run("report-blocked");
    await eventually(async () => expect((await admin(server).task(held.task.task_id)).status).toBe("blocked"));
    await eventually(() => expect(splitFrontmatter(app.vault.contents.get(note.path)!).frontmatter?.status).toBe("blocked"));
    run("renew-lease");
    await eventually(() => expect(Notice.shown.some((m) => m.startsWith("OWP: lease renewed until"))).toBe(true));
    run("report-pr-opened");
    const prModal = lastModal();
    await (settingsIn(prModal.contentEl).get("Pull request URL")!.components[0] as TextComponent).enter("https://github.com/vault/app/pull/4");
    await submit(prModal);
    expect((await admin(server).task(held.task.task_id)).pr_number).toBe(4);
    expect(splitFrontmatter(app.vault.contents.get(note.path)!).frontmatter).toMatchObject({ status: "pr_opened", lease_expires_at: null });
    app.workspace.activeFile = null;
    run("report-released");
    expect(Notice.shown.at(-1)).toContain("open the note of a task you hold");
  });

  it("shows the pool live (or polling without a stream) and filters tasks", async () => {
    run("open-pool");
    await eventually(() => expect(view(VIEW_POOL).querySelectorAll(".owp-table")).toHaveLength(3));
    const pool = app.workspace.getLeavesOfType(VIEW_POOL)[0].view as unknown as PoolView;
    expect(view(VIEW_POOL).querySelector(".owp-live")?.textContent).toMatch(/^(live|polling every 30 s)$/);
    expect(pool.tasks.map((t) => t.title).sort()).toEqual(["Style the view", "Write the sync"]);
    const status = view(VIEW_POOL).querySelector('select[aria-label="status"]') as HTMLSelectElement;
    status.value = "pr_opened";
    status.dispatchEvent(new Event("change"));
    const rows = [...view(VIEW_POOL).querySelectorAll(".owp-table")[1].querySelectorAll("tbody tr")].map((r) => r.firstElementChild?.textContent);
    expect(rows).toEqual(["Write the sync"]);
    expect(filterTasks(pool.tasks, { repo: "", status: "", skill: "TypeScript" }).map((t) => t.title)).toEqual(["Style the view"]);
    expect(view(VIEW_POOL).textContent).toContain("vault/app");
  });

  it("admin view: asks for the token, then reputation, tier change, analytics, import; demo refused outside demo mode", async () => {
    run("open-admin");
    await eventually(() => expect(view(VIEW_ADMIN).textContent).toContain("Set the admin token"));
    plugin.settings.adminToken = ADMIN_TOKEN;
    await plugin.saveSettings();
    const adminView = app.workspace.getLeavesOfType(VIEW_ADMIN)[0].view as unknown as { reload(): Promise<void> };
    await adminView.reload();
    const el = view(VIEW_ADMIN);
    expect(el.textContent).toContain(`vault-worker (${plugin.settings.workerId})`);
    expect(el.textContent).toMatch(/trust: basic · reputation: \d+\.\d · \d+ tasks/);
    const analytics = [...el.querySelectorAll(".owp-section")].find((s) => s.textContent?.startsWith("Analytics"))!;
    const metrics = new Map([...analytics.querySelectorAll("tbody tr")].map((r) => [r.children[0].textContent, r.children[1].textContent]));
    expect(metrics.get("offers_accepted")).toBe("1");
    expect(metrics.get("offers_rejected")).toBe("1");

    buttonIn(el, "Change tier…").click();
    const tierModal = lastModal();
    const tierFields = settingsIn(tierModal.contentEl);
    await (tierFields.get("Tier")!.components[0] as DropdownComponent).enter("trusted");
    await submit(tierModal);
    expect(tierModal.contentEl.textContent).toContain("Give a reason");
    await (tierFields.get("Reason")!.components[0] as TextComponent).enter("steady, careful PRs");
    await submit(tierModal);
    expect((await admin(server).worker(plugin.settings.workerId)).trust_tier).toBe("trusted");
    await eventually(() => expect(view(VIEW_ADMIN).textContent).toContain("trust: trusted"));

    const yamlNote = await app.vault.create("import.md", "# tasks\n```yaml\ntasks:\n  - repo: vault/app\n    key: k-1\n    title: From a note\n```\n");
    app.workspace.activeFile = yamlNote;
    run("import-tasks");
    await eventually(() => expect(Notice.shown.at(-1)).toBe("OWP import: 1 created, 0 updated, 0 unchanged, 0 rejected"));

    run("start-demo");
    // outside demo mode the server refuses; the notice carries its own detail
    await eventually(() => expect(Notice.shown.at(-1)).toBe("OWP (404): the demo runs only in demo mode; start the server with `owp demo`"));
  });

  it("registers a command for every action", () => {
    const ids = [...(plugin as unknown as { commands: Map<string, unknown> }).commands.keys()].map((id) => id.replace("owp-pool:", ""));
    expect(ids).toEqual(expect.arrayContaining([
      "open-work", "open-pool", "open-admin", "register", "status-idle", "status-working", "status-paused", "get-offers",
      "accept-offer", "decline-offer", "lease-work", "sync-notes", "renew-lease", "report-in-progress", "report-blocked",
      "report-pr-opened", "report-released", "import-tasks", "start-demo", "change-trust-tier",
    ]));
  });
});
