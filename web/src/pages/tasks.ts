import { ApiError, get, send, type Task, type TaskDetail } from "../api";
import { ago, badge, dateTime, el, field, notice, replace, select, table, text } from "../dom";
import type { State } from "../live";
import type { Page } from "../page";
import { feedItem, listState, nameOf } from "./common";

const STATUSES = ["ready", "offered", "leased", "in_progress", "blocked", "pr_opened", "merged", "cancelled"];
const FILTERS = ["repo", "status", "skill", "area", "q"] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

function matches(task: Task, f: Filters): boolean {
  if (f.repo && task.repo !== f.repo) return false;
  if (f.status && task.status !== f.status) return false;
  if (f.skill && !task.required_skills.some((s) => s === f.skill.toLowerCase())) return false;
  if (f.area && (task.area ?? "") !== f.area.toLowerCase()) return false;
  if (f.q) {
    const haystack = [task.title, task.task_id, task.key ?? "", task.repo, task.worker_id ?? ""].join(" ").toLowerCase();
    if (!f.q.toLowerCase().split(/\s+/).every((word) => haystack.includes(word))) return false;
  }
  return true;
}

export const tasksPage: Page = {
  path: "tasks",
  title: "Tasks",
  mount(root, { live }) {
    const params = new URLSearchParams(location.search);
    const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? ""])) as Filters;
    const repoSelect = select("repo", [["", "all repositories"]], filters.repo);
    const controls = {
      repo: repoSelect,
      status: select("status", [["", "any status"], ...STATUSES.map((s): [string, string] => [s, s.replace(/_/g, " ")])], filters.status),
      skill: el("input", { name: "skill", type: "search", placeholder: "python", value: filters.skill }),
      area: el("input", { name: "area", type: "search", placeholder: "auth", value: filters.area }),
      q: el("input", { name: "q", type: "search", placeholder: "title, id, key…", value: filters.q }),
    };
    const form = el("form", { class: "filters", "data-testid": "task-filters", role: "search" },
      field("Repository", controls.repo), field("Status", controls.status), field("Skill", controls.skill),
      field("Area", controls.area), field("Search", controls.q));
    const count = el("p", { class: "muted", "data-testid": "task-count" });
    const list = el("div", {});
    const detail = el("aside", { class: "card detail", "data-testid": "task-detail", hidden: true });
    root.append(form, count, el("div", { class: "split" }, list, detail));
    let openTask: string | null = params.get("task");

    const readFilters = (): void => {
      for (const key of FILTERS) filters[key] = controls[key].value.trim();
      const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
      if (openTask) query.set("task", openTask);
      history.replaceState(null, "", `${location.pathname}${query.size ? `?${query}` : ""}`);
      draw(live.state);
    };
    form.addEventListener("input", readFilters);
    form.addEventListener("submit", (e) => { e.preventDefault(); readFilters(); });

    const draw = (state: State): void => {
      const repos = [...new Set([...(state.repos ?? []).map((r) => r.repo), ...(state.tasks ?? []).map((t) => t.repo)])].sort();
      if (repoSelect.options.length !== repos.length + 1) {
        const current = repoSelect.value || filters.repo;
        replace(repoSelect, el("option", { value: "" }, "all repositories"), repos.map((r) => el("option", { value: r }, r)));
        repoSelect.value = current;
      }
      const shown = (state.tasks ?? []).filter((t) => matches(t, filters));
      count.textContent = state.tasks ? `${shown.length} of ${state.tasks.length} tasks` : "";
      const blocked = listState(state, "tasks", state.tasks, "no tasks yet — label an issue pool:ready or import tasks");
      if (blocked) return replace(list, blocked);
      if (shown.length === 0) return replace(list, notice("empty", "no task matches these filters"));
      replace(list, table(["Task", "Repository", "Status", "Skills", "Area", "Worker", "Updated"],
        shown.map((t) => [
          el("a", { href: `?task=${encodeURIComponent(t.task_id)}`, "data-task": t.task_id,
                    onclick: (e: Event) => { e.preventDefault(); void openDetail(t.task_id); } }, t.title),
          text(t.repo), badge(t.status), text(t.required_skills.join(", ") || "—"), text(t.area), text(t.worker_id ? nameOf(state, t.worker_id) : null),
          el("time", { datetime: t.updated_at, title: dateTime(t.updated_at) }, ago(t.updated_at)),
        ]), "tasks-table", ["", "hide-narrow", "", "hide-narrow", "hide-narrow", "hide-narrow", ""]));
    };

    const openDetail = async (taskId: string): Promise<void> => {
      openTask = taskId;
      readFilters();
      detail.hidden = false;
      replace(detail, notice("loading", "loading the task…"));
      try {
        showDetail(await get("/v1/tasks/{task_id}", { path: { task_id: taskId } }));
      } catch (error) {
        replace(detail, notice("error", (error as Error).message));
      }
    };

    const showDetail = (task: TaskDetail): void => {
      const actions = live.state.admin ? adminActions(task) : null;
      replace(detail,
        el("div", { class: "detail-head" }, el("h2", {}, task.title),
          el("button", { type: "button", class: "link", "aria-label": "Close",
                         onclick: () => { openTask = null; detail.hidden = true; readFilters(); } }, "✕")),
        el("dl", { class: "facts" },
          el("dt", {}, "Status"), el("dd", {}, badge(task.status)),
          el("dt", {}, "Repository"), el("dd", {}, task.repo),
          el("dt", {}, "Task id"), el("dd", {}, task.task_id),
          el("dt", {}, "Points"), el("dd", {}, String(task.estimate_points)),
          el("dt", {}, "Priority"), el("dd", {}, task.priority),
          el("dt", {}, "Worker"), el("dd", {}, task.worker_id ? nameOf(live.state, task.worker_id) : "—"),
          task.url ? [el("dt", {}, "Issue"), el("dd", {}, el("a", { href: task.url, rel: "noreferrer", target: "_blank" }, task.url))] : null,
          task.pr_url ? [el("dt", {}, "Pull request"), el("dd", {}, el("a", { href: task.pr_url, rel: "noreferrer", target: "_blank" }, task.pr_url))] : null),
        actions,
        el("h3", {}, "History"),
        task.history.length ? el("ol", { class: "feed", "data-testid": "task-history" }, [...task.history].reverse().map((e) => feedItem(e, live.state)))
          : notice("empty", "no events"));
    };

    const adminActions = (task: TaskDetail): HTMLElement => {
      const message = el("span", { class: "form-error", role: "alert" });
      const act = (status: "cancelled" | "ready") => async (): Promise<void> => {
        try {
          await send("POST", "/v1/tasks/{task_id}/status", { path: { task_id: task.task_id }, body: { status } });
          await openDetail(task.task_id);
        } catch (error) {
          message.textContent = error instanceof ApiError ? error.message : String(error);
        }
      };
      return el("div", { class: "actions" },
        task.status !== "cancelled" && task.status !== "merged" ?
          el("button", { type: "button", class: "danger", onclick: act("cancelled") }, "Cancel task") : null,
        task.status !== "ready" && task.status !== "merged" ?
          el("button", { type: "button", onclick: act("ready") }, "Requeue") : null,
        message);
    };

    const unsubscribe = live.subscribe((state, event) => {
      if (event && openTask && event.target === openTask) void openDetail(openTask);
      else draw(state);
    });
    draw(live.state);
    if (openTask) void openDetail(openTask);
    return unsubscribe;
  },
};
