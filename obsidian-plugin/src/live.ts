/** Keeps a pool view current: the server's event stream (SSE, tokens in headers) when it answers, else
 * polling. The owner passes in its own interval registration so Obsidian cleans up. */

import type * as Http from "node:http";
import { Platform } from "obsidian";
import type { Credentials } from "./api";

export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Splits complete SSE frames off a buffer; returns the events and what is left for the next chunk. */
export function parseSse(buffer: string): { events: SseEvent[]; rest: string } {
  const normalised = buffer.replace(/\r\n?/g, "\n");
  const frames = normalised.split("\n\n");
  const rest = frames.pop() ?? "";
  const events: SseEvent[] = [];
  for (const frame of frames) {
    let id: string | null = null;
    let event = "message";
    const data: string[] = [];
    for (const line of frame.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length || id !== null) events.push({ id, event, data: data.join("\n") });
  }
  return { events, rest };
}

/** An answer to the stream request: its status, content type, and the body as it arrives. */
export interface OpenedStream {
  status: number;
  contentType: string;
  chunks: AsyncIterable<Uint8Array>;
  close(): void;
}

export type StreamOpener = (url: string, headers: Record<string, string>, signal: AbortSignal) => Promise<OpenedStream>;

async function* chunksOf(reader: ReadableStreamDefaultReader<Uint8Array>): AsyncIterable<Uint8Array> {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

/** The stream through fetch (mobile): the server must allow the app's origin (CORS). */
export function fetchOpener(doFetch: typeof fetch): StreamOpener {
  return async (url, headers, signal) => {
    const response = await doFetch(url, { headers, signal });
    const body = response.body;
    return {
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      chunks: body ? chunksOf(body.getReader()) : (async function* () {})(),
      close: () => void body?.cancel().catch(() => undefined),
    };
  };
}

/** The stream through Node's http (Obsidian desktop), which no CORS rule applies to. */
export function nodeOpener(load: (module: "http" | "https") => typeof Http): StreamOpener {
  return (url, headers, signal) =>
    new Promise((resolve, reject) => {
      const module = load(url.startsWith("https:") ? "https" : "http");
      const request = module.get(url, { headers, signal }, (response) => {
        resolve({
          status: response.statusCode ?? 0,
          contentType: String(response.headers["content-type"] ?? ""),
          chunks: response,
          close: () => response.destroy(),
        });
      });
      request.on("error", reject);
    });
}

/** Node's http on the desktop app, fetch elsewhere. */
export function defaultOpener(): StreamOpener {
  const nodeRequire = Platform.isDesktopApp ? (window as unknown as { require?: (name: string) => unknown }).require : undefined;
  if (typeof nodeRequire === "function") return nodeOpener((module) => nodeRequire(module) as typeof Http);
  return fetchOpener(window.fetch.bind(window));
}

export type FeedMode = "stream" | "poll" | "stopped";

const RETRY_FIRST_MS = 3000;
const RETRY_MAX_MS = 60_000;

export interface FeedOptions {
  credentials: () => Credentials;
  preferStream: () => boolean;
  pollSeconds: () => number;
  /** Something changed on the server (an event arrived, or a poll is due). */
  onChange: (event: SseEvent | null) => void;
  onMode: (mode: FeedMode, reason: string) => void;
  /** Obsidian's registerInterval of the owning component. */
  registerInterval: (id: number) => number;
  open?: StreamOpener;
}

export class LiveFeed {
  mode: FeedMode = "stopped";
  reason = "";
  private abort: AbortController | null = null;
  private poller: number | null = null;
  private retry: number | null = null;
  private lastEventId: string | null = null;
  /** How long until the next attempt at the stream while it is down; doubles up to a minute. */
  private backoff = RETRY_FIRST_MS;

  constructor(private readonly options: FeedOptions) {}

  start(): void {
    this.stop();
    if (this.options.preferStream()) void this.stream();
    else this.poll("polling is chosen in the settings");
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
    if (this.poller !== null) window.clearInterval(this.poller);
    if (this.retry !== null) window.clearTimeout(this.retry);
    this.poller = this.retry = null;
    this.backoff = RETRY_FIRST_MS;
    this.setMode("stopped", "");
  }

  private async stream(): Promise<void> {
    const { baseUrl, workerToken, adminToken } = this.options.credentials();
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (adminToken) headers["X-Admin-Token"] = adminToken;
    else if (workerToken) headers.Authorization = `Bearer ${workerToken}`;
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    const abort = new AbortController();
    this.abort = abort;
    const open = this.options.open ?? defaultOpener();
    let opened: OpenedStream;
    try {
      opened = await open(`${baseUrl.replace(/\/+$/, "")}/v1/events/stream`, headers, abort.signal);
    } catch (error) {
      if (!abort.signal.aborted) this.fallBack(`the event stream is unreachable (${(error as Error).message})`);
      return;
    }
    const ok = opened.status >= 200 && opened.status < 300;
    if (!ok || !opened.contentType.startsWith("text/event-stream")) {
      opened.close();
      this.fallBack(`the event stream answered ${opened.status}${ok ? ` (${opened.contentType || "no type"})` : ""}`);
      return;
    }
    if (this.poller !== null) window.clearInterval(this.poller);  // live again: polling is not needed
    this.poller = null;
    this.backoff = RETRY_FIRST_MS;
    this.setMode("stream", "live from /v1/events/stream");
    this.options.onChange(null);
    const decoder = new TextDecoder();
    let buffer = "";
    let failure = "";
    try {
      for await (const chunk of opened.chunks) {
        const parsed = parseSse(buffer + decoder.decode(chunk, { stream: true }));
        buffer = parsed.rest;
        for (const event of parsed.events) {
          if (event.id !== null) this.lastEventId = event.id;
          this.options.onChange(event);
        }
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      failure = ` (${(error as Error).message})`;
    }
    if (abort.signal.aborted) return;
    // The stream ended (server restart, slow client dropped): resume from the last id shortly.
    this.setMode("poll", `the event stream closed${failure}; reconnecting`);
    this.retryStream();
  }

  /** The stream is unavailable: poll meanwhile, and try the stream again later (the server may be restarting). */
  private fallBack(reason: string): void {
    if (this.poller === null) this.poll(reason);
    else this.setMode("poll", reason);
    this.retryStream();
  }

  private retryStream(): void {
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, RETRY_MAX_MS);
    this.retry = window.setTimeout(() => {
      this.retry = null;
      void this.stream();
    }, wait);
  }

  private poll(reason: string): void {
    this.setMode("poll", reason);
    this.options.onChange(null);
    this.poller = this.options.registerInterval(
      window.setInterval(() => this.options.onChange(null), this.options.pollSeconds() * 1000),
    );
  }

  private setMode(mode: FeedMode, reason: string): void {
    this.mode = mode;
    this.reason = reason;
    this.options.onMode(mode, reason);
  }
}
