// Pieces several pages share: the activity feed, budget gauges, list states.
import type { AuditEvent, Repo } from "../api";
import { badge, clockTime, el, gauge, notice } from "../dom";
import type { State } from "../live";

/** A task's title or a worker's name for an id, when the page knows it; else the id itself. */
export function nameOf(state: State, id: string | null | undefined): string {
  if (!id) return "";
  if (id.startsWith("t_")) return state.tasks?.find((t) => t.task_id === id)?.title ?? id;
  if (id.startsWith("w_")) return state.workers?.find((w) => w.worker_id === id)?.name ?? id;
  return id;
}

export function feedItem(event: AuditEvent, state: State): HTMLElement {
  const worker = typeof event.details["worker_id"] === "string" ? String(event.details["worker_id"]) : event.actor;
  const by = worker !== event.target ? nameOf(state, worker) : "";
  return el("li", { class: "feed-item", "data-seq": event.seq, "data-type": event.type },
    el("time", { datetime: event.ts }, clockTime(event.ts)),
    badge(event.type, event.type.split(".")[0]),
    el("span", { class: "feed-target", title: event.target ?? "" }, nameOf(state, event.target ?? event.repo)),
    event.repo && event.repo !== event.target ? el("span", { class: "feed-actor" }, `in ${event.repo}`) : null,
    by ? el("span", { class: "feed-actor" }, `by ${by}`) : null);
}

export function budgetRow(repo: Repo): HTMLElement {
  const b = repo.budget;
  return el("div", { class: "budget", "data-testid": `budget-${repo.repo}` },
    el("div", { class: "budget-head" },
      el("strong", {}, repo.repo),
      el("span", { class: "budget-count", "data-testid": "budget-count" }, `${b.in_flight}/${b.max_open_prs}`)),
    gauge(b.in_flight, b.max_open_prs, `review budget of ${repo.repo}`),
    el("small", { class: "muted" },
      `${b.open_prs} open PR${b.open_prs === 1 ? "" : "s"} · ${b.leases} lease${b.leases === 1 ? "" : "s"} · ` +
      `${b.offers} offer${b.offers === 1 ? "" : "s"} · ${b.available} free`));
}

/** The loading / error / empty state of a list, or null when it has rows to show. */
export function listState<T>(state: State, key: "workers" | "tasks" | "repos", rows: T[] | null, empty: string): HTMLElement | null {
  const error = state.errors[key];
  if (error && rows === null) return notice("error", error);
  if (rows === null) return notice("loading", `loading ${key}…`);
  if (rows.length === 0) return notice("empty", empty);
  return null;
}
