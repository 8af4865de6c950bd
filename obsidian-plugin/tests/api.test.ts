/** The API client against a real OWP server: typed calls, and the server's own problem+json detail on errors. */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwpError, describeError, route } from "../src/api";
import { freePort, PoolServer } from "./pool-server";
import { admin, clientFor, registeredWorker } from "./helpers";

let server: PoolServer;

beforeAll(async () => {
  server = await PoolServer.start();
});

afterAll(async () => {
  await server?.stop();
});

describe("OwpClient", () => {
  it("registers, heartbeats and reads itself back", async () => {
    const { client, workerId } = await registeredWorker(server, "ann", ["Python", "docs"]);
    const ack = await client.heartbeat("working", "on it");
    expect(ack.ok).toBe(true);
    const me = await client.worker(workerId);
    expect(me).toMatchObject({ worker_id: workerId, name: "ann", status: "working", online: true });
    expect([...me.skills].sort()).toEqual(["docs", "python"]);
  });

  it("gets an offer, declines it with a protocol reason, and is told why none follow", async () => {
    await server.repo("acme/decline");
    const taskId = await server.task("acme/decline", "fix the parser", { required_skills: ["rust"], estimate_points: 2 });
    const { client } = await registeredWorker(server, "bob", ["rust"]);
    const first = await client.offers();
    const offer = first.offers.find((o) => o.task_id === taskId);
    expect(offer).toBeDefined();
    expect(Date.parse(offer!.expires_at)).toBeGreaterThan(Date.now());
    const declined = await client.decline(offer!.offer_id, "unclear_requirements", "which parser?");
    expect(declined).toEqual({ ok: true, offer_id: offer!.offer_id, task_id: taskId });
    const again = await client.offers();
    expect(again.offers.map((o) => o.task_id)).not.toContain(taskId);
    expect(again.why_none?.summary).toMatch(/no offers for you|no tasks are ready/);
    // answering the same offer twice is the server's 409, with its own words
    const error = await client.accept(offer!.offer_id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OwpError);
    expect((error as OwpError).status).toBe(409);
    expect((error as OwpError).detail).toContain("can no longer be answered");
  });

  it("accepts an offer, renews the lease and reports progress up to pr_opened", async () => {
    await server.repo("acme/accept");
    const taskId = await server.task("acme/accept", "add a flag", { required_skills: ["go"] });
    const { client } = await registeredWorker(server, "cem", ["go"]);
    const offer = (await client.offers()).offers.find((o) => o.task_id === taskId)!;
    const accepted = await client.accept(offer.offer_id);
    expect(accepted.task_id).toBe(taskId);
    const renewed = await client.renew(accepted.lease_id);
    expect(Date.parse(renewed.lease_expires_at)).toBeGreaterThanOrEqual(Date.parse(accepted.lease_expires_at));
    expect((await client.report(taskId, "in_progress")).status).toBe("in_progress");
    const missing = await client.report(taskId, "pr_opened").catch((e: unknown) => e);
    expect((missing as OwpError).detail).toBe("pr_opened needs artifact.pr_url, the pull request's URL");
    const opened = await client.report(taskId, "pr_opened", "https://github.com/acme/accept/pull/7");
    expect(opened).toMatchObject({ status: "pr_opened", pr_url: "https://github.com/acme/accept/pull/7", pr_number: 7 });
  });

  it("filters tasks and lists repo budgets", async () => {
    await server.repo("acme/list", 2);
    await server.task("acme/list", "docs task", { required_skills: ["docs"] });
    await server.task("acme/list", "ts task", { required_skills: ["typescript"] });
    const { client } = await registeredWorker(server, "dee", ["docs"]);
    const tasks = await client.tasks({ repo: "acme/list", skill: "typescript" });
    expect(tasks.map((t) => t.title)).toEqual(["ts task"]);
    const repo = (await client.repos()).repos.find((r) => r.repo === "acme/list")!;
    expect(repo.budget.max_open_prs).toBe(2);
  });

  it("imports tasks from YAML with the admin token", async () => {
    const yaml = ["repos:", "  acme/yaml: {max_open_prs: 2}", "tasks:", "  - repo: acme/yaml", "    key: y-1", "    title: imported one", "    required_skills: [python]", ""].join("\n");
    const report = await admin(server).importTasks(yaml);
    expect(report).toMatchObject({ created: 1, rejected: 0, repos: ["acme/yaml"] });
    expect((await admin(server).importTasks(yaml)).unchanged).toBe(1);
  });

  it("shows the server's detail for a rejected token and for missing credentials", async () => {
    const bad = clientFor(server, "not-a-real-token").client;
    const error = (await bad.heartbeat("idle").catch((e: unknown) => e)) as OwpError;
    expect(error.status).toBe(401);
    expect(describeError(error)).toMatch(/^OWP \(401\): /);
    const wrongAdmin = clientFor(server, "", "wrong-admin-token-000000").client;
    const adminError = (await wrongAdmin.importTasks("tasks: []").catch((e: unknown) => e)) as OwpError;
    expect(adminError.detail).toBe("X-Admin-Token is not the admin token of this pool");
    const none = clientFor(server).client;
    const noToken = (await none.offers().catch((e: unknown) => e)) as OwpError;
    expect(noToken.status).toBe(0);
    expect(noToken.detail).toContain("Register as a worker");
  });

  it("says the server is unreachable when nothing listens", async () => {
    const port = await freePort();
    const down = clientFor({ url: `http://127.0.0.1:${port}` } as PoolServer, "t").client;
    const error = (await down.heartbeat("idle").catch((e: unknown) => e)) as OwpError;
    expect(error.status).toBe(0);
    expect(error.detail).toContain(`the OWP server at http://127.0.0.1:${port} is not reachable`);
  });

  it("reads reputation, changes a trust tier with a reason, and reads pool analytics", async () => {
    const { workerId } = await registeredWorker(server, "fay", ["go"]);
    const before = await admin(server).reputation(workerId);
    expect(before).toMatchObject({ worker_id: workerId, trust_tier: "basic" });
    expect(before.reputation_score).toBeGreaterThan(0);
    expect(before.reputation_score).toBeLessThan(100);
    expect((await admin(server).setTrustTier(workerId, "untrusted", "spam PRs")).trust_tier).toBe("untrusted");
    const pool = await admin(server).poolAnalytics("30d");
    expect(pool.period).toBe("30d");
    expect(pool.metrics.offers_rejected).toBeGreaterThanOrEqual(1);
    const demo = (await admin(server).startDemo().catch((e: unknown) => e)) as OwpError;
    expect([demo.status, demo.detail]).toEqual([404, "the demo runs only in demo mode; start the server with `owp demo`"]);
  });

  it("fills spec path templates", () => {
    expect(route("/v1/tasks/{task_id}", { task_id: "t_1/x" })).toBe("/v1/tasks/t_1%2Fx");
    expect(() => route("/v1/tasks/{task_id}")).toThrow("needs task_id");
  });
});
