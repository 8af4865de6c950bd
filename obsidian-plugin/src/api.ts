/** The OWP protocol client: every call goes through Obsidian's requestUrl to the settings' base URL. */

import { requestUrl } from "obsidian";
import type { components, paths } from "./generated/openapi";

export type Schemas = components["schemas"];
export type Task = Schemas["Task"];
export type TaskDetail = Schemas["TaskDetail"];
export type Offer = Schemas["Offer"];
export type Lease = Schemas["Lease"];
export type Worker = Schemas["Worker"];
export type Repo = Schemas["Repo"];
export type RejectReason = Schemas["RejectReason"];
export type WorkerState = Schemas["WorkerState"];
export type TaskStatusName = Schemas["TaskStatusName"];
export type TrustName = Schemas["TrustName"];
/** What a worker may report about a task it holds. */
export type WorkerReport = "in_progress" | "blocked" | "pr_opened" | "released";
export const WORKER_REPORTS: readonly WorkerReport[] = ["in_progress", "blocked", "pr_opened", "released"];

/** Told how many items of a paged list have arrived, while more pages are still to come. */
export type Progress = (arrived: number) => void;

/** The most items the server gives in one page of a list. */
const PAGE_LIMIT = 1000;

/** Where and as whom to call: read fresh from the settings on each call. */
export interface Credentials {
  baseUrl: string;
  workerToken: string;
  adminToken: string;
}

type As = "worker" | "admin" | "reader" | "none";

/** A failed call, with the server's own problem+json `detail` when it sent one. */
export class OwpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly title = "",
  ) {
    super(detail);
    this.name = "OwpError";
  }
}

/** Fills a spec path template with values; the template must exist in the committed spec. */
export function route<P extends keyof paths & string>(template: P, params: Record<string, string> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`route ${template} needs ${name}`);
    return encodeURIComponent(value);
  });
}

interface Send {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  yaml?: string;
  as?: As;
}

export class OwpClient {
  constructor(private readonly credentials: () => Credentials) {}

  /** One HTTP call; returns the parsed JSON answer or throws OwpError with the server's detail. */
  async send<T>(method: string, path: string, options: Send = {}): Promise<T> {
    const { baseUrl, workerToken, adminToken } = this.credentials();
    const base = baseUrl.trim().replace(/\/+$/, "");
    if (!/^https?:\/\/\S+$/.test(base)) {
      throw new OwpError(0, `the scheduler URL "${baseUrl}" is not an http(s) URL; set it in Settings → OWP Pool`);
    }
    const headers: Record<string, string> = { Accept: "application/json" };
    const as = options.as ?? "reader";
    if ((as === "worker" || as === "reader") && workerToken) headers.Authorization = `Bearer ${workerToken}`;
    if ((as === "admin" || as === "reader") && adminToken) headers["X-Admin-Token"] = adminToken;
    if (as === "worker" && !workerToken) {
      throw new OwpError(0, "no worker token yet: run “OWP: Register as a worker” or paste your token in the settings");
    }
    if (as === "admin" && !adminToken) throw new OwpError(0, "this needs the admin token; set it in Settings → OWP Pool");
    let body: string | undefined;
    let contentType: string | undefined;
    if (options.yaml !== undefined) {
      body = options.yaml;
      contentType = "application/yaml";
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      contentType = "application/json";
    } else if (method !== "GET") {
      body = "{}";
      contentType = "application/json";
    }
    const query = Object.entries(options.query ?? {})
      .filter((entry): entry is [string, string | number] => entry[1] !== undefined && entry[1] !== "")
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join("&");
    const url = `${base}${path}${query ? `?${query}` : ""}`;
    let response;
    try {
      response = await requestUrl({ url, method, headers, body, contentType, throw: false });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new OwpError(0, `the OWP server at ${base} is not reachable (${reason}); is \`owp serve\` running and the URL right?`);
    }
    const parsed = parseJson(response.text);
    if (response.status >= 400) throw problem(response.status, parsed, response.text);
    return parsed as T;
  }

  /** Reads a cursor-paged list to its end: a page holds at most PAGE_LIMIT items, so the first is not all. */
  private async everyPage<P extends { next_cursor: string | null }, T>(
    path: string,
    query: Record<string, string | undefined>,
    items: (page: P) => T[],
    progress?: Progress,
    as: As = "reader",
  ): Promise<T[]> {
    const found: T[] = [];
    for (let cursor = ""; ; ) {
      const page = await this.send<P>("GET", path, { query: { ...query, limit: PAGE_LIMIT, cursor }, as });
      found.push(...items(page));
      if (!page.next_cursor) return found;
      if (page.next_cursor === cursor) throw new Error(`${path} gave the same cursor twice; its list cannot be read to the end`);
      progress?.(found.length);
      cursor = page.next_cursor;
    }
  }

  // ------------------------------------------------------------ workers

  register(body: Schemas["RegisterWorker"]): Promise<Schemas["Registered"]> {
    return this.send("POST", route("/v1/workers/register"), { json: body, as: "none" });
  }

  heartbeat(status: WorkerState, note?: string): Promise<Schemas["HeartbeatAck"]> {
    return this.send("POST", route("/v1/workers/heartbeat"), { json: { status, note }, as: "worker" });
  }

  /** Every worker, page by page. */
  workers(progress?: Progress): Promise<Worker[]> {
    return this.everyPage<Schemas["WorkerList"], Worker>(route("/v1/workers"), {}, (page) => page.workers, progress);
  }

  worker(workerId: string): Promise<Worker> {
    return this.send("GET", route("/v1/workers/{worker_id}", { worker_id: workerId }));
  }

  // ------------------------------------------------------------ offers and leases

  /** Asks for offers into free capacity and lists the pending ones (with `why_none` when there are none). */
  offers(): Promise<Schemas["Offers"]> {
    return this.send("POST", route("/v1/work/offers"), { as: "worker" });
  }

  accept(offerId: string): Promise<Schemas["OfferAccepted"]> {
    return this.send("POST", route("/v1/work/offers/{offer_id}/accept", { offer_id: offerId }), { as: "worker" });
  }

  decline(offerId: string, reason: RejectReason, note?: string): Promise<Schemas["OfferRejected"]> {
    return this.send("POST", route("/v1/work/offers/{offer_id}/reject", { offer_id: offerId }), {
      json: { reason, note: note || null },
      as: "worker",
    });
  }

  /** Leases the best eligible tasks straight into free capacity, and lists all active leases. */
  leaseWork(): Promise<Schemas["Work"]> {
    return this.send("GET", route("/v1/work"), { as: "worker" });
  }

  renew(leaseId: string): Promise<Schemas["LeaseRenewed"]> {
    return this.send("POST", route("/v1/leases/{lease_id}/renew", { lease_id: leaseId }), { as: "worker" });
  }

  report(taskId: string, status: WorkerReport, prUrl?: string, message?: string): Promise<Task> {
    const body: Schemas["StatusReport"] = { status, message: message || null, artifact: prUrl ? { pr_url: prUrl } : null };
    return this.send("POST", route("/v1/tasks/{task_id}/status", { task_id: taskId }), { json: body, as: "worker" });
  }

  // ------------------------------------------------------------ tasks and repos

  /** Every task that matches the filter, page by page. */
  tasks(filter: { repo?: string; status?: TaskStatusName; skill?: string; worker_id?: string } = {}, progress?: Progress): Promise<Task[]> {
    return this.everyPage<Schemas["TaskList"], Task>(route("/v1/tasks"), filter, (page) => page.tasks, progress);
  }

  task(taskId: string): Promise<TaskDetail> {
    return this.send("GET", route("/v1/tasks/{task_id}", { task_id: taskId }));
  }

  repos(): Promise<Schemas["RepoList"]> {
    return this.send("GET", route("/v1/repos"));
  }

  importTasks(yaml: string): Promise<Schemas["ImportReport"]> {
    return this.send("POST", route("/v1/tasks/import"), { yaml, as: "admin" });
  }

  // ------------------------------------------------------------ trust, analytics, demo (admin)

  reputation(workerId: string): Promise<Schemas["Reputation"]> {
    return this.send("GET", route("/v1/workers/{worker_id}/reputation", { worker_id: workerId }), { as: "admin" });
  }

  /** Every worker's reputation, page by page: a few requests for the whole pool instead of one per worker. */
  reputations(progress?: Progress): Promise<Schemas["Reputation"][]> {
    return this.everyPage<Schemas["ReputationList"], Schemas["Reputation"]>(
      route("/v1/workers/reputation"), {}, (page) => page.reputations, progress, "admin");
  }

  setTrustTier(workerId: string, tier: TrustName, reason: string): Promise<Schemas["Reputation"]> {
    const body: Schemas["TrustTierChange"] = { tier, reason };
    return this.send("POST", route("/v1/workers/{worker_id}/trust-tier", { worker_id: workerId }), { json: body, as: "admin" });
  }

  poolAnalytics(period: Schemas["PoolAnalytics"]["period"] = "7d"): Promise<Schemas["PoolAnalytics"]> {
    return this.send("GET", route("/v1/analytics/pool"), { query: { period }, as: "admin" });
  }

  /** Starts the server's demo scenario (404 unless it runs in demo mode, 409 while one runs). */
  startDemo(): Promise<Schemas["DemoStatus"]> {
    const body: Partial<Schemas["DemoStart"]> = {};
    return this.send("POST", route("/v1/demo/start"), { json: body, as: "admin" });
  }

  demoStatus(): Promise<Schemas["DemoStatus"]> {
    return this.send("GET", route("/v1/demo/status"), { as: "admin" });
  }
}

function parseJson(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function problem(status: number, parsed: unknown, text: string): OwpError {
  if (parsed && typeof parsed === "object") {
    const body = parsed as { detail?: unknown; title?: unknown };
    const title = typeof body.title === "string" ? body.title : "";
    if (typeof body.detail === "string" && body.detail) return new OwpError(status, body.detail, title);
    if (title) return new OwpError(status, title, title);
  }
  const snippet = text.trim().slice(0, 200);
  return new OwpError(status, `the server answered ${status}${snippet ? `: ${snippet}` : ""}`);
}

/** The message a Notice shows for any failure. */
export function describeError(error: unknown): string {
  if (error instanceof OwpError) return error.status ? `OWP (${error.status}): ${error.detail}` : `OWP: ${error.detail}`;
  return `OWP: ${error instanceof Error ? error.message : String(error)}`;
}
