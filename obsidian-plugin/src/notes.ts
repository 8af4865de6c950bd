/** Task notes: each task the worker holds is a note whose frontmatter follows the server, and whose
 * `status:` the contributor may edit to report progress. */

import { App, TFile, normalizePath, stringifyYaml } from "obsidian";
import { OwpClient, Task, TaskDetail, WORKER_REPORTS, WorkerReport } from "./api";

/** The note status of a task that is no longer held by this worker (its lease ended without a PR). */
export const RELEASED = "released";
const ACTIVE = new Set(["leased", "in_progress", "blocked"]);
const FINAL = new Set(["merged", "cancelled", RELEASED]);

export interface TaskFrontmatter {
  task_id: string;
  repo: string;
  title: string;
  url: string | null;
  skills: string[];
  points: number;
  lease_id: string | null;
  lease_expires_at: string | null;
  status: string;
  pr_url: string | null;
}

/** A task the worker holds, with its lease (null once the PR is open). */
export interface HeldTask {
  task: Task;
  leaseId: string | null;
  leaseExpiresAt: string | null;
}

export interface SyncResult {
  held: HeldTask[];
  created: string[];
  updated: string[];
}

/** Reports the notes layer makes to the person (a Notice in the app, a list in tests). */
export type Tell = (message: string) => void;

/** The lease this worker holds on a task, read from the task's history (`lease.granted`/`lease.renewed`). */
export function activeLease(detail: TaskDetail, workerId: string): { leaseId: string; expiresAt: string } | null {
  if (!ACTIVE.has(detail.status) || detail.worker_id !== workerId) return null;
  for (let i = detail.history.length - 1; i >= 0; i--) {
    const event = detail.history[i];
    const details = (event.details ?? {}) as Record<string, unknown>;
    if (details.worker_id !== workerId || typeof details.lease_id !== "string") continue;
    if (event.type === "lease.granted" || event.type === "lease.renewed") {
      return { leaseId: details.lease_id, expiresAt: String(details.expires_at ?? "") };
    }
    if (event.type.startsWith("lease.")) return null;
  }
  return null;
}

/** The status a note shows for a task: the server's while this worker holds it, else how it ended. */
export function noteStatus(task: Task, workerId: string): string {
  if (task.status === "merged" || task.status === "cancelled") return task.status;
  return task.worker_id === workerId ? task.status : RELEASED;
}

export function frontmatterOf(held: HeldTask, workerId: string): TaskFrontmatter {
  const { task } = held;
  return {
    task_id: task.task_id,
    repo: task.repo,
    title: task.title,
    url: task.url ?? null,
    skills: [...task.required_skills],
    points: task.estimate_points,
    lease_id: held.leaseId,
    lease_expires_at: held.leaseExpiresAt,
    status: noteStatus(task, workerId),
    pr_url: task.pr_url ?? null,
  };
}

export function noteFileName(task: Task): string {
  const title = task.title.replace(/[\\/:*?"<>|#^[\]]/g, " ").replace(/\s+/g, " ").trim().slice(0, 60).trim();
  return `${task.task_id}${title ? ` ${title}` : ""}.md`;
}

/** Text from the pool (an issue's title, its skills: anyone on GitHub may write them) as plain words in a note:
 * markdown and HTML in it are escaped, so it cannot embed a remote image (a tracking pixel), a vault note, a link
 * or a heading of its own. */
export function inert(text: string): string {
  return text.replace(/\s+/g, " ").replace(/[\\`*_[\]()!<>|~=$%^#{}]/g, (c) => `\\${c}`);
}

export function noteBody(task: Task): string {
  const link = task.url ? `[${task.repo}${task.issue_number ? `#${task.issue_number}` : ""}](${task.url})` : task.repo;
  const skills = task.required_skills.length ? inert(task.required_skills.join(", ")) : "none listed";
  return [
    `# ${inert(task.title)}`,
    "",
    `${link} · ${task.estimate_points} points · skills: ${skills}`,
    "",
    "Set `status:` above to in_progress, blocked, pr_opened (with `pr_url:`) or released to report it.",
    "",
    "## My notes",
    "",
  ].join("\n");
}

export class TaskNotes {
  /** The status each task note had when it last matched the server: an edit that differs is a report. */
  private readonly known = new Map<string, string>();
  private readonly reporting = new Set<string>();

  constructor(
    private readonly app: App,
    private readonly client: OwpClient,
    private readonly folder: () => string,
    private readonly workerId: () => string,
    private readonly tell: Tell,
  ) {}

  /** Task notes in the folder by task id. */
  notes(): Map<string, TFile> {
    const prefix = `${this.folder()}/`;
    const found = new Map<string, TFile>();
    for (const file of this.app.vault.getMarkdownFiles()) {
      if (!file.path.startsWith(prefix)) continue;
      const taskId = this.app.metadataCache.getFileCache(file)?.frontmatter?.task_id;
      if (typeof taskId === "string") found.set(taskId, file);
    }
    return found;
  }

  /** Brings every held task's note (and every note of a task no longer held) in step with the server. */
  async sync(): Promise<SyncResult> {
    const workerId = this.workerId();
    if (!workerId) throw new Error("register as a worker first (OWP: Register as a worker)");
    const mine = await this.client.tasks({ worker_id: workerId });
    const held: HeldTask[] = [];
    for (const task of mine) {
      if (ACTIVE.has(task.status)) {
        const lease = activeLease(await this.client.task(task.task_id), workerId);
        held.push({ task, leaseId: lease?.leaseId ?? null, leaseExpiresAt: lease?.expiresAt ?? null });
      } else if (task.status === "pr_opened") {
        held.push({ task, leaseId: null, leaseExpiresAt: null });
      }
    }
    const result: SyncResult = { held, created: [], updated: [] };
    const notes = this.notes();
    for (const entry of held) {
      const file = notes.get(entry.task.task_id);
      const path = await this.write(entry, file);
      if (path) (file ? result.updated : result.created).push(path);
    }
    const heldIds = new Set(held.map((h) => h.task.task_id));
    for (const [taskId, file] of notes) {
      if (heldIds.has(taskId)) continue;
      const shown = this.app.metadataCache.getFileCache(file)?.frontmatter?.status;
      if (FINAL.has(String(shown))) {
        this.known.set(taskId, String(shown));
        continue;
      }
      const task = await this.client.task(taskId);
      const path = await this.write({ task, leaseId: null, leaseExpiresAt: null }, file);
      if (path) result.updated.push(path);
    }
    return result;
  }

  /** Creates the note or updates its frontmatter; returns its path when something changed. */
  async write(held: HeldTask, file?: TFile): Promise<string | null> {
    const fields = frontmatterOf(held, this.workerId());
    this.known.set(fields.task_id, fields.status);
    if (!file) {
      const folder = normalizePath(this.folder());
      if (!this.app.vault.getAbstractFileByPath(folder)) await this.app.vault.createFolder(folder);
      const path = normalizePath(`${folder}/${noteFileName(held.task)}`);
      const created = await this.app.vault.create(path, `---\n${stringifyYaml(fields)}---\n${noteBody(held.task)}`);
      return created.path;
    }
    let changed = false;
    await this.app.fileManager.processFrontMatter(file, (frontmatter: Record<string, unknown>) => {
      for (const [key, value] of Object.entries(fields)) {
        if (JSON.stringify(frontmatter[key] ?? null) !== JSON.stringify(value)) {
          frontmatter[key] = value;
          changed = true;
        }
      }
    });
    return changed ? file.path : null;
  }

  /** Called when a note's metadata changes: a `status:` that differs from the server's is reported. */
  async onNoteChanged(file: TFile, frontmatter: Record<string, unknown> | undefined): Promise<void> {
    const taskId = frontmatter?.task_id;
    if (typeof taskId !== "string" || !file.path.startsWith(`${this.folder()}/`)) return;
    const known = this.known.get(taskId);
    const wanted = String(frontmatter?.status ?? "");
    if (known === undefined || wanted === known || this.reporting.has(taskId)) return;
    if (!(WORKER_REPORTS as readonly string[]).includes(wanted)) {
      this.tell(`OWP: status “${wanted}” cannot be reported; use ${WORKER_REPORTS.join(", ")}`);
      await this.restore(file, known);
      return;
    }
    const prUrl = typeof frontmatter?.pr_url === "string" ? frontmatter.pr_url.trim() : "";
    if (wanted === "pr_opened" && !prUrl) {
      this.tell("OWP: add `pr_url: <the pull request URL>` to the frontmatter, then set status to pr_opened again");
      await this.restore(file, known);
      return;
    }
    await this.report(taskId, wanted as WorkerReport, prUrl || undefined, file);
  }

  /** Reports a status for a held task and writes the server's answer into its note. */
  async report(taskId: string, status: WorkerReport, prUrl?: string, file?: TFile): Promise<Task> {
    this.reporting.add(taskId);
    try {
      let task: Task;
      try {
        task = await this.client.report(taskId, status, prUrl);
      } catch (error) {
        const note = file ?? this.notes().get(taskId);
        const known = this.known.get(taskId);
        if (note && known !== undefined) await this.restore(note, known);
        throw error;
      }
      const note = file ?? this.notes().get(taskId);
      if (note) {
        const lease = ACTIVE.has(task.status) ? activeLease(await this.client.task(taskId), this.workerId()) : null;
        await this.write({ task, leaseId: lease?.leaseId ?? null, leaseExpiresAt: lease?.expiresAt ?? null }, note);
      } else {
        this.known.set(taskId, noteStatus(task, this.workerId()));
      }
      this.tell(`OWP: ${task.task_id} is now ${noteStatus(task, this.workerId())}`);
      return task;
    } finally {
      this.reporting.delete(taskId);
    }
  }

  /** Records a new lease expiry (after a renewal) in the task's note. */
  async setLeaseExpiry(taskId: string, expiresAt: string): Promise<void> {
    const note = this.notes().get(taskId);
    if (!note) return;
    await this.app.fileManager.processFrontMatter(note, (frontmatter: Record<string, unknown>) => {
      frontmatter.lease_expires_at = expiresAt;
    });
  }

  private async restore(file: TFile, status: string): Promise<void> {
    await this.app.fileManager.processFrontMatter(file, (frontmatter: Record<string, unknown>) => {
      frontmatter.status = status;
    });
  }
}
