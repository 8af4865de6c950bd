/** Lists the server pages (tasks, workers, reputations: at most 1,000 a page) are read to their end, by the client,
 * the task notes, the pool view and the admin view; and an event that arrives while the pool view reads its pages
 * is not lost. A real server behind a proxy that pages two items at a time (tests/paging-proxy.ts). */

import * as http from "node:http";
import * as https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { App, Platform } from "obsidian";
import type { Schemas, Task, Worker } from "../src/api";
import OwpPlugin from "../src/main";
import { TaskNotes } from "../src/notes";
import { VIEW_ADMIN, type AdminView } from "../src/views/admin";
import { VIEW_POOL, type PoolView } from "../src/views/pool";
import { ADMIN_TOKEN, PoolServer } from "./pool-server";
import { PagingProxy } from "./paging-proxy";
import { admin, clientFor, eventually, registeredWorker } from "./helpers";

let server: PoolServer;
let proxy: PagingProxy;

beforeAll(async () => {
  server = await PoolServer.start();
  proxy = await PagingProxy.start(server.url, 2);
});

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

/** The pool's tasks as the server lists them in one page (fewer than 1,000 here). */
async function allTasks(): Promise<Task[]> {
  return (await admin(server).send<{ tasks: Task[] }>("GET", "/v1/tasks", { query: { limit: 1000 } })).tasks;
}

describe("paged lists", () => {
  it("the client follows next_cursor to the last page, keeps the filter on each, and tells how far it got", async () => {
    await server.repo("acme/paged");
    const titles = ["one", "two", "three", "four", "five"];
    for (const title of titles) await server.task("acme/paged", title);
    for (const name of ["ann", "bob", "cem"]) await registeredWorker(server, name, []);
    const { client } = clientFor(proxy);
    const arrived: number[] = [];
    const tasks = await client.tasks({ repo: "acme/paged" }, (count) => arrived.push(count));
    expect(tasks.map((t) => t.title)).toEqual(titles);
    expect(arrived).toEqual([2, 4]);
    const asked = proxy.pagedRequests.filter((r) => r.startsWith("/v1/tasks?"));
    expect(asked).toHaveLength(3);
    for (const request of asked) expect(request).toMatch(/[?&]repo=acme%2Fpaged(&|$)/);
    for (const request of asked) expect(request).toContain("limit=1000");
    expect(asked.slice(1).every((r) => /[?&]cursor=t_/.test(r))).toBe(true);
    const direct = (await admin(server).send<{ workers: { worker_id: string }[] }>("GET", "/v1/workers", { query: { limit: 1000 } })).workers;
    expect((await client.workers()).map((w) => w.worker_id)).toEqual(direct.map((w) => w.worker_id));
  });

  it("task notes cover every task the worker holds, past the first page", async () => {
    const { creds, workerId } = await registeredWorker(server, "holder", [], 9, 3);
    const worker = clientFor(proxy, creds.workerToken).client;
    const leased = (await worker.leaseWork()).leases.map((l) => l.task_id);
    expect(leased).toHaveLength(3);
    const notes = new TaskNotes(new App(), worker, () => "OWP", () => workerId, () => undefined);
    const synced = await notes.sync();
    expect(synced.held.map((h) => h.task.task_id).sort()).toEqual([...leased].sort());
    expect(synced.created).toHaveLength(3);
  });
});

describe("the pool view", () => {
  let plugin: OwpPlugin;
  const desktop = Platform.isDesktopApp;
  const win = window as unknown as { require?: (name: string) => unknown };

  beforeAll(async () => {
    // the desktop app's stream (Node's http): a stream through fetch would need CORS, which the server does not send
    Platform.isDesktopApp = true;
    win.require = (name) => (name === "https" ? https : http);
    const app = new App();
    plugin = new OwpPlugin(app as never, { id: "owp-pool", name: "OWP Pool", version: "0.1.0" });
    (plugin as unknown as { data: unknown }).data = { baseUrl: proxy.url, adminToken: ADMIN_TOKEN, liveUpdates: "stream" };
    await (plugin as unknown as { enable(): Promise<void> }).enable();
  });

  afterAll(() => {
    plugin?.unload();
    Platform.isDesktopApp = desktop;
    delete win.require;
  });

  it("reads every page, shows how far it got meanwhile, and reads again after an event that came mid-read", async () => {
    await server.repo("acme/view");
    for (const title of ["view one", "view two", "view three"]) await server.task("acme/view", title);
    const first = (await allTasks())[0];  // on the first page
    const held = proxy.holdNextPage("/v1/tasks");
    const requestsBefore = proxy.pagedRequests.length;
    await plugin.openView(VIEW_POOL);
    const view = plugin.app.workspace.getLeavesOfType(VIEW_POOL)[0].view as unknown as PoolView;
    const inside = view as unknown as { feed: { lastEventId: string | null }; pending: number | null; reading: Promise<void> | null };
    await held.reached;
    await eventually(() => expect(view.contentEl.querySelector(".owp-progress")?.textContent).toMatch(/^reading the pool: (.*, )?2 tasks(, .*)? so far…$/));
    expect(view.contentEl.textContent).toContain("Reading the pool…");
    expect(view.contentEl.textContent).not.toContain("No tasks in the pool.");

    // a task of the page already read changes while the later pages are still to come
    await admin(server).send("POST", `/v1/tasks/${first.task_id}/status`, { json: { status: "cancelled" }, as: "admin" });
    const events = await admin(server).send<{ events: { seq: number }[] }>("GET", "/v1/audit/events", { query: { target: first.task_id }, as: "admin" });
    const seq = String(events.events.at(-1)!.seq);
    await eventually(() => expect(inside.feed.lastEventId).toBe(seq));
    await eventually(() => expect(inside.pending).toBeNull());  // the event's reload was asked for
    const firstReads = () => proxy.pagedRequests.slice(requestsBefore).filter((r) => r.startsWith("/v1/tasks?") && !r.includes("cursor="));
    expect(firstReads()).toHaveLength(1);  // no second read runs alongside the one under way
    held.release();

    await eventually(() => expect(inside.reading).toBeNull());
    expect(firstReads()).toHaveLength(2);  // the read the event asked for came after the first one
    const expected = await allTasks();
    expect(view.tasks.map((t) => [t.task_id, t.status])).toEqual(expected.map((t) => [t.task_id, t.status]));
    expect(view.tasks.find((t) => t.task_id === first.task_id)?.status).toBe("cancelled");
    const rows = view.contentEl.querySelectorAll(".owp-table")[1].querySelectorAll("tbody tr");
    expect(rows).toHaveLength(expected.length);
    const workers = (await admin(server).send<{ workers: unknown[] }>("GET", "/v1/workers", { query: { limit: 1000 } })).workers;
    expect(view.contentEl.textContent).toContain(`of ${workers.length})`);
    expect(view.contentEl.querySelector(".owp-progress")?.textContent).toBe("");
  });
});

describe("the admin view", () => {
  it("reads every worker's reputation a page at a time, not one request per worker", async () => {
    for (const name of ["rep-ann", "rep-bob", "rep-cem", "rep-dan", "rep-eve"]) await registeredWorker(server, name, []);
    const workers = (await admin(server).send<{ workers: Worker[] }>("GET", "/v1/workers", { query: { limit: 1000 } })).workers;
    const expected = new Map<string, Schemas["Reputation"]>();
    for (const w of workers) expected.set(w.worker_id, await admin(server).reputation(w.worker_id));
    const { client } = clientFor(proxy, "", ADMIN_TOKEN);
    expect(new Map((await client.reputations()).map((r) => [r.worker_id, r]))).toEqual(expected);

    const app = new App();
    const plugin = new OwpPlugin(app as never, { id: "owp-pool", name: "OWP Pool", version: "0.1.0" } as never);
    (plugin as unknown as { data: unknown }).data = { baseUrl: proxy.url, adminToken: ADMIN_TOKEN, liveUpdates: "poll" };
    await (plugin as unknown as { enable(): Promise<void> }).enable();
    try {
      const before = proxy.requests.length;
      await plugin.openView(VIEW_ADMIN);
      const view = app.workspace.getLeavesOfType(VIEW_ADMIN)[0].view as unknown as AdminView;
      await eventually(() => expect(view.demo.value ?? view.demo.error).toBeDefined());
      const asked = proxy.requests.slice(before);
      expect(asked.filter((r) => /^GET \/v1\/workers\/w_[^/]+\/reputation$/.test(r))).toEqual([]);
      const pages = Math.ceil(workers.length / 2);
      expect(asked.filter((r) => r === "GET /v1/workers/reputation")).toHaveLength(pages);
      const cards = [...view.contentEl.querySelectorAll(".owp-card")].map((c) => c.textContent ?? "");
      expect(cards).toHaveLength(workers.length);
      for (const w of workers) {
        const card = cards.find((c) => c.includes(`(${w.worker_id})`));
        const rep = expected.get(w.worker_id)!;
        expect(card).toContain(`reputation: ${rep.reputation_score.toFixed(1)} · ${rep.metrics.total_tasks} tasks`);
      }
    } finally {
      plugin.unload();
    }
  });
});
