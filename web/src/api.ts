// The API client. Paths and answers are typed from the committed OpenAPI spec (src/openapi.d.ts is generated
// from owp_bot/protocol/openapi.json on every build), so a protocol change that breaks the UI breaks the build.
import type { components, paths } from "./openapi";

export type Schemas = components["schemas"];
export type Task = Schemas["Task"];
export type TaskDetail = Schemas["TaskDetail"];
export type Worker = Schemas["Worker"];
export type Repo = Schemas["Repo"];
export type AuditEvent = Schemas["AuditEvent"];
export type RepoSettings = Schemas["RepoSettings"];
export type DashboardInfo = Schemas["DashboardInfo"];

type JsonOf<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Method = "get" | "post" | "put";
type Op<P extends keyof paths, M extends Method> = paths[P] extends Record<M, infer O> ? O : never;
type Ok<O> = O extends { responses: infer R }
  ? JsonOf<R extends { 200: infer A } ? A : R extends { 201: infer A } ? A : never>
  : never;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
type BodyOf<O> = O extends { requestBody: { content: { "application/json": infer B } } } ? B : never;
type PathsWith<M extends Method> = { [P in keyof paths]: paths[P] extends Record<M, { responses: unknown }> ? P : never }[keyof paths];

const TOKEN_KEY = "owp.adminToken";

export const adminToken = {
  get(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An answer other than 2xx: the problem+json detail says what to do. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly body: unknown = null, readonly retryAfter = 0) {
    super(message);
  }
  /** The endpoint does not exist on this server (another subsystem not deployed yet). */
  get missing(): boolean {
    return this.status === 404 && typeof this.body === "object" && this.body !== null &&
      String((this.body as { detail?: unknown }).detail ?? "").startsWith("no endpoint at");
  }
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  path?: Record<string, string>;
  body?: unknown;
  accept?: string;
}

export function url(path: string, options: CallOptions = {}): string {
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = options.path?.[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${path}`);
    return value.split("/").map(encodeURIComponent).join("/");
  });
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const qs = search.toString();
  return qs ? `${filled}?${qs}` : filled;
}

export async function send(method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: options.accept ?? "application/json" };
  const token = adminToken.get();
  if (token) headers["X-Admin-Token"] = token;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const response = await fetch(url(path, options), { method, headers, body, cache: "no-store" });
  if (!response.ok) {
    let problem: unknown = null;
    let detail = `${method} ${path} answered ${response.status}`;
    try {
      problem = await response.json();
      const said = (problem as { detail?: unknown }).detail;
      if (typeof said === "string") detail = said;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, detail, problem, Number(response.headers.get("Retry-After") ?? 0) || 0);
  }
  return response;
}

/** GET an endpoint of the spec: the answer is typed from it. */
export async function get<P extends PathsWith<"get">>(
  path: P, options: CallOptions & { query?: QueryOf<Op<P, "get">> & CallOptions["query"] } = {},
): Promise<Ok<Op<P, "get">>> {
  return (await send("GET", path, options)).json() as Promise<Ok<Op<P, "get">>>;
}

export async function put<P extends PathsWith<"put">>(
  path: P, body: BodyOf<Op<P, "put">>, options: CallOptions = {},
): Promise<Ok<Op<P, "put">>> {
  return (await send("PUT", path, { ...options, body })).json() as Promise<Ok<Op<P, "put">>>;
}

export async function post<P extends PathsWith<"post">>(
  path: P, body: BodyOf<Op<P, "post">> | undefined, options: CallOptions = {},
): Promise<Ok<Op<P, "post">>> {
  return (await send("POST", path, { ...options, body })).json() as Promise<Ok<Op<P, "post">>>;
}

/** Every page of a cursor-paged list. */
export async function all<T>(fetchPage: (cursor: string) => Promise<{ next_cursor?: string | null; items: T[] }>): Promise<T[]> {
  const found: T[] = [];
  let cursor = "";
  for (;;) {
    const page = await fetchPage(cursor);
    found.push(...page.items);
    if (!page.next_cursor) return found;
    cursor = page.next_cursor;
  }
}
