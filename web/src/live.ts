// The dashboard's live state: lists loaded from the API and kept fresh by the event stream.
// The stream is read with fetch (not EventSource) so that the admin token travels in a header, never in a
// URL, and so that every event type (other subsystems add their own) reaches one handler. It resumes with
// Last-Event-ID after any drop: the server replays what was missed, and the feed de-duplicates by seq.
import { adminToken, all, ApiError, get, type AuditEvent, type DashboardInfo, type Repo, type Task, type Worker } from "./api";

export type Connection = "connecting" | "live" | "reconnecting" | "private";
export type Lists = "workers" | "tasks" | "repos";

export interface State {
  info: DashboardInfo | null;
  admin: boolean;
  connection: Connection;
  lastSeq: number | null;
  feed: AuditEvent[]; // newest first, unique by seq
  workers: Worker[] | null;
  tasks: Task[] | null;
  repos: Repo[] | null;
  errors: Partial<Record<Lists | "info", string>>;
}

const FEED_SIZE = 200;
const BACKLOG = 50;
// Lists reload at most this often while events pour in (the feed itself is instant): a busy pool must not
// spend a public viewer's request budget (the server rate-limits each address).
const REFRESH_EVERY_MS = 1000;  // a busy pool reloads its lists at most once a second
const FAMILY_LISTS: Record<string, Lists[]> = { worker: ["workers"], repo: ["repos"] };
const ALL_LISTS: Lists[] = ["workers", "tasks", "repos"];

type Listener = (state: State, event: AuditEvent | null) => void;

export class Live {
  readonly state: State = {
    info: null, admin: false, connection: "connecting", lastSeq: null, feed: [],
    workers: null, tasks: null, repos: null, errors: {},
  };
  private listeners = new Set<Listener>();
  private abort: AbortController | null = null;
  private generation = 0;
  private refreshTimer: number | undefined;
  private lastRefresh = 0;
  private stale = new Set<Lists>();  // to reload when the refresh timer fires
  private due = new Set<Lists>();  // to read when the read under way ends
  private reading: Promise<void> | null = null;
  private seen = new Set<number>();

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: AuditEvent | null = null): void {
    for (const listener of this.listeners) listener(this.state, event);
  }

  /** Start (or restart after signing in or out): load the lists and open the stream from a fresh backlog. */
  async start(): Promise<void> {
    this.abort?.abort();
    this.generation += 1;
    this.state.admin = adminToken.get() !== null;
    this.state.connection = "connecting";
    this.state.lastSeq = null;
    this.state.feed = [];
    this.seen.clear();
    try {
      this.state.info = await get("/v1/dashboard");
      delete this.state.errors.info;
    } catch (error) {
      this.state.errors.info = (error as Error).message;
    }
    if (this.state.info && !this.state.info.public_dashboard && !this.state.admin) {
      this.state.connection = "private";
      this.emit();
      return;
    }
    void this.refresh();
    void this.stream(this.generation);
  }

  /** Reload lists, one read at a time: lists asked for during a read (an event came while its pages did) are read
   * again after it, so no change is missed and an older read never lands over a newer one. */
  refresh(lists: Lists[] = ALL_LISTS): Promise<void> {
    for (const list of lists) this.due.add(list);
    this.reading ??= this.readDue();
    return this.reading;
  }

  private async readDue(): Promise<void> {
    const loaders: Record<Lists, () => Promise<void>> = {
      workers: () => this.load("workers", () => all(async (cursor) => {
        const page = await get("/v1/workers", { query: { cursor, limit: 1000 } });
        return { items: page.workers, next_cursor: page.next_cursor };
      })),
      tasks: () => this.load("tasks", () => all(async (cursor) => {
        const page = await get("/v1/tasks", { query: { cursor, limit: 1000 } });
        return { items: page.tasks, next_cursor: page.next_cursor };
      })),
      repos: () => this.load("repos", async () => (await get("/v1/repos")).repos),
    };
    try {
      while (this.due.size) {
        const lists = [...this.due];
        this.due.clear();
        await Promise.all(lists.map((list) => loaders[list]()));
        this.emit();
      }
    } finally {
      this.reading = null;
    }
  }

  private async load<K extends Lists>(key: K, fetchAll: () => Promise<NonNullable<State[K]>>): Promise<void> {
    try {
      this.state[key] = await fetchAll();
      delete this.state.errors[key];
    } catch (error) {
      if (error instanceof ApiError && error.status === 429) {
        this.markStale([key], error.retryAfter * 1000);  // keep what is shown; try again when allowed
        return;
      }
      this.state.errors[key] = error instanceof ApiError ? error.message : `could not load ${key}: ${(error as Error).message}`;
    }
  }

  /** Reload these lists soon: at once after a quiet spell, else at most every REFRESH_EVERY_MS. */
  private markStale(lists: Lists[], notBefore = 0): void {
    for (const list of lists) this.stale.add(list);
    if (this.refreshTimer !== undefined) return;
    const wait = Math.max(150, notBefore, this.lastRefresh + REFRESH_EVERY_MS - Date.now());
    this.refreshTimer = window.setTimeout(() => {
      this.refreshTimer = undefined;
      this.lastRefresh = Date.now();
      const due = [...this.stale];
      this.stale.clear();
      void this.refresh(due);
    }, wait);
  }

  private async stream(generation: number): Promise<void> {
    let backoff = 500;
    while (generation === this.generation) {
      const abort = new AbortController();
      this.abort = abort;
      try {
        await this.readOnce(abort.signal, () => { backoff = 500; });
      } catch (error) {
        if (generation !== this.generation) return;
        if (error instanceof ApiError && error.status === 401) {
          adminToken.clear();  // the token was rotated: fall back to what the public may see
          this.state.admin = false;
          if (this.state.info && !this.state.info.public_dashboard) {
            this.state.connection = "private";
            this.emit();
            return;
          }
        }
      }
      if (generation !== this.generation) return;
      this.state.connection = "reconnecting";
      this.emit();
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }

  private async readOnce(signal: AbortSignal, onReady: () => void): Promise<void> {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    const token = adminToken.get();
    if (token) headers["X-Admin-Token"] = token;
    if (this.state.lastSeq !== null) headers["Last-Event-ID"] = String(this.state.lastSeq);
    const path = this.state.lastSeq === null ? `/v1/events/stream?backlog=${BACKLOG}` : "/v1/events/stream";
    const response = await fetch(path, { headers, signal, cache: "no-store" });
    if (!response.ok || !response.body) {
      const body = await response.json().catch(() => null) as { detail?: string } | null;
      throw new ApiError(response.status, body?.detail ?? `the event stream answered ${response.status}`, body);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const frames = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = frames.pop() ?? "";
      for (const frame of frames) this.frame(frame, onReady);
    }
  }

  private frame(frame: string, onReady: () => void): void {
    let id: string | null = null;
    let type = "message";
    const data: string[] = [];
    for (const line of frame.split(/\r\n|\n|\r/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    const seq = id !== null && /^\d+$/.test(id) ? Number(id) : null;
    if (type === "ready") {
      // `id` is where the server starts. Behind our last seq, its log is another one (a fresh demo, a restored
      // backup) that numbers from 1 again: forget the old feed. After any drop, reload the lists once.
      if (seq !== null && this.state.lastSeq !== null && seq < this.state.lastSeq) {
        this.state.feed = [];
        this.seen.clear();
      }
      if (this.state.lastSeq !== null) this.markStale(ALL_LISTS);
      if (seq !== null) this.state.lastSeq = seq;
      onReady();
      this.state.connection = "live";
      this.emit();
      return;
    }
    if (seq !== null) this.state.lastSeq = Math.max(this.state.lastSeq ?? 0, seq);
    if (data.length === 0) return;
    const event = JSON.parse(data.join("\n")) as AuditEvent;
    if (this.seen.has(event.seq)) return;
    this.seen.add(event.seq);
    this.state.feed.unshift(event);
    if (this.state.feed.length > FEED_SIZE) {
      for (const dropped of this.state.feed.splice(FEED_SIZE)) this.seen.delete(dropped.seq);
    }
    this.markStale(FAMILY_LISTS[event.type.split(".")[0] ?? ""] ?? ALL_LISTS);
    this.emit(event);
  }
}
