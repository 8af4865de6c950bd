/** Task notes against a real server: leased tasks become notes whose frontmatter follows the server, and an
 * edited `status:` is reported. The vault and metadata cache are the mock's (in memory, real YAML). */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { App, TFile, splitFrontmatter } from "obsidian";
import { TaskNotes, noteBody, noteFileName } from "../src/notes";
import { OwpClient } from "../src/api";
import { PoolServer } from "./pool-server";
import { admin, eventually, registeredWorker } from "./helpers";

let server: PoolServer;

beforeAll(async () => {
  server = await PoolServer.start();
});

afterAll(async () => {
  await server?.stop();
});

interface Setup {
  app: App;
  notes: TaskNotes;
  told: string[];
  client: OwpClient;
  workerId: string;
  taskId: string;
}

let n = 0;

/** A worker holding one freshly accepted task, and a vault whose metadata changes feed the notes layer. */
async function holding(): Promise<Setup> {
  n += 1;
  const repo = `acme/notes${n}`;
  await server.repo(repo);
  const taskId = await server.task(repo, `Fix: the "parser" #${n}`, {
    required_skills: [`skill${n}`], estimate_points: 3, url: `https://github.com/${repo}/issues/${n}`, issue_number: n,
  });
  const { client, workerId } = await registeredWorker(server, `worker${n}`, [`skill${n}`]);
  const offer = (await client.offers()).offers.find((o) => o.task_id === taskId)!;
  await client.accept(offer.offer_id);
  const app = new App();
  const told: string[] = [];
  const notes = new TaskNotes(app, client, () => "OWP/Tasks", () => workerId, (m) => told.push(m));
  app.metadataCache.on("changed", (file: TFile, _data: string, cache: { frontmatter?: Record<string, unknown> }) => {
    void notes.onNoteChanged(file, cache.frontmatter).catch((e: Error) => told.push(`error: ${e.message}`));
  });
  return { app, notes, told, client, workerId, taskId };
}

function frontmatter(app: App, file: TFile) {
  return splitFrontmatter(app.vault.contents.get(file.path)!).frontmatter!;
}

async function editStatus(app: App, file: TFile, fields: Record<string, unknown>): Promise<void> {
  await app.fileManager.processFrontMatter(file, (fm: Record<string, unknown>) => Object.assign(fm, fields));
}

describe("task notes", () => {
  let s: Setup;
  let file: TFile;

  beforeEach(async () => {
    s = await holding();
    const result = await s.notes.sync();
    expect(result.created).toHaveLength(1);
    file = s.app.vault.getAbstractFileByPath(result.created[0]) as TFile;
  });

  it("creates a note per leased task with the server's fields", async () => {
    expect(file.path).toBe(`OWP/Tasks/${s.taskId} Fix the parser.md`.replace("parser.md", `parser ${n}.md`));
    const fm = frontmatter(s.app, file);
    const detail = await s.client.task(s.taskId);
    const granted = detail.history.filter((e) => e.type === "lease.granted").pop()!;
    expect(fm).toEqual({
      task_id: s.taskId, repo: `acme/notes${n}`, title: `Fix: the "parser" #${n}`, url: `https://github.com/acme/notes${n}/issues/${n}`,
      skills: [`skill${n}`], points: 3, lease_id: (granted.details as Record<string, string>).lease_id,
      lease_expires_at: (granted.details as Record<string, string>).expires_at, status: "leased", pr_url: null,
    });
    expect(Date.parse(String(fm.lease_expires_at))).toBeGreaterThan(Date.now());
    const body = splitFrontmatter(s.app.vault.contents.get(file.path)!).body;
    expect(body).toContain(`# Fix: the "parser" \\#${n}`);  // the title as words: its # is no tag or heading
    expect(body).toContain("## My notes");
    // a second sync changes nothing and keeps the contributor's own notes
    await s.app.vault.modify(file, `${s.app.vault.contents.get(file.path)}my own thoughts\n`);
    expect(await s.notes.sync()).toMatchObject({ created: [], updated: [] });
    expect(s.app.vault.contents.get(file.path)).toContain("my own thoughts");
  });

  it("reports a status typed into the frontmatter and writes the server's answer back", async () => {
    await editStatus(s.app, file, { status: "in_progress" });
    await eventually(async () => expect((await s.client.task(s.taskId)).status).toBe("in_progress"));
    await eventually(() => expect(s.told).toContain(`OWP: ${s.taskId} is now in_progress`));
    expect(frontmatter(s.app, file).status).toBe("in_progress");
  });

  it("asks for pr_url before pr_opened, then reports the PR", async () => {
    await editStatus(s.app, file, { status: "pr_opened" });
    await eventually(() => expect(frontmatter(s.app, file).status).toBe("leased"));
    expect(s.told[0]).toContain("add `pr_url: <the pull request URL>`");
    expect((await s.client.task(s.taskId)).status).toBe("leased");
    await editStatus(s.app, file, { status: "pr_opened", pr_url: "https://github.com/acme/x/pull/3" });
    await eventually(() => expect(frontmatter(s.app, file)).toMatchObject({ status: "pr_opened", pr_url: "https://github.com/acme/x/pull/3", lease_id: null }));
    expect((await s.client.task(s.taskId)).status).toBe("pr_opened");
  });

  it("restores the status and says why when the value cannot be reported", async () => {
    await editStatus(s.app, file, { status: "merged" });
    await eventually(() => expect(frontmatter(s.app, file).status).toBe("leased"));
    expect(s.told).toEqual(["OWP: status “merged” cannot be reported; use in_progress, blocked, pr_opened, released"]);
  });

  it("restores the status and shows the server's refusal", async () => {
    await admin(server).send("POST", `/v1/tasks/${s.taskId}/status`, { json: { status: "cancelled" }, as: "admin" });
    await editStatus(s.app, file, { status: "blocked" });
    await eventually(() => expect(s.told.some((m) => m.startsWith("error: "))).toBe(true));
    expect(s.told.find((m) => m.startsWith("error: "))).toContain(`you do not hold task ${s.taskId}`);
    expect(frontmatter(s.app, file).status).toBe("leased");
    // the next sync brings the note in step with the server
    await s.notes.sync();
    expect(frontmatter(s.app, file)).toMatchObject({ status: "cancelled", lease_id: null, lease_expires_at: null });
  });

  it("release from the frontmatter ends the lease; renewals move the deadline in the note", async () => {
    const leaseId = String(frontmatter(s.app, file).lease_id);
    const renewed = await s.client.renew(leaseId);
    await s.notes.setLeaseExpiry(s.taskId, renewed.lease_expires_at);
    expect(frontmatter(s.app, file).lease_expires_at).toBe(renewed.lease_expires_at);
    await editStatus(s.app, file, { status: "released" });
    await eventually(async () => expect((await s.client.task(s.taskId)).status).toBe("ready"));
    await eventually(() => expect(frontmatter(s.app, file)).toMatchObject({ status: "released", lease_id: null }));
    expect((await s.notes.sync()).held).toEqual([]);
  });

  it("follows the server when an admin merges the task", async () => {
    await s.notes.report(s.taskId, "pr_opened", "https://github.com/acme/x/pull/9");
    await admin(server).send("POST", `/v1/tasks/${s.taskId}/status`, { json: { status: "merged" }, as: "admin" });
    const result = await s.notes.sync();
    expect(result.updated).toEqual([file.path]);
    expect(frontmatter(s.app, file).status).toBe("merged");
  });
});

describe("note file names", () => {
  it("keep the task id and drop characters vaults reject", () => {
    const name = noteFileName({ task_id: "t_1", title: 'a/b:c*d?"e"<f>|g#h^[i]' } as never);
    expect(name).toBe("t_1 a b c d e f g h i.md");
  });
});

describe("note bodies", () => {
  it("show an issue's title and skills as words: no remote image, embed, link, heading or HTML from them", () => {
    const hostile = "![pixel](https://evil.example/p.png) ![[Private note]] [click](https://evil.example) <img src=x>\n# Owned";
    const body = noteBody({
      task_id: "t_1", repo: "acme/api", title: hostile, url: "https://github.com/acme/api/issues/7", issue_number: 7,
      estimate_points: 2, required_skills: ["python", "![x](https://evil.example/s.png)"],
    } as never);
    const [heading, , facts] = body.split("\n");
    expect(heading).toBe(
      "# \\!\\[pixel\\]\\(https://evil.example/p.png\\) \\!\\[\\[Private note\\]\\] \\[click\\]\\(https://evil.example\\) " +
      "\\<img src\\=x\\> \\# Owned");
    expect(facts).toBe("[acme/api#7](https://github.com/acme/api/issues/7) · 2 points · skills: " +
      "python, \\!\\[x\\]\\(https://evil.example/s.png\\)");
    expect(body.split("\n").filter((line) => line.startsWith("#"))).toEqual([heading, "## My notes"]);
  });
});
