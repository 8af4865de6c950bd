import { ApiError, put, type Repo, type RepoSettings } from "../api";
import { el, field, notice, replace, table, text } from "../dom";
import type { State } from "../live";
import type { Page } from "../page";
import { budgetRow, listState } from "./common";

const WEEK_MS = 7 * 86_400_000;

function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) return "default";
  return value % 3600 === 0 ? `${value / 3600}h` : value % 60 === 0 ? `${value / 60}m` : `${value}s`;
}

function settingsForm(repo: Repo | null, onSaved: () => void): HTMLFormElement {
  const name = el("input", { name: "repo", required: true, placeholder: "owner/name", value: repo?.repo ?? "",
                             pattern: "[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", readonly: repo !== null });
  const max = el("input", { name: "max_open_prs", type: "number", min: 0, max: 1000, required: true,
                            value: repo?.max_open_prs ?? 3 });
  const locks = el("input", { name: "area_locks", type: "checkbox" });
  locks.checked = repo?.area_locks ?? true;
  const leaseTtl = el("input", { name: "lease_ttl", placeholder: "4h", value: repo?.lease_ttl_seconds ? seconds(repo.lease_ttl_seconds) : "" });
  const offerTtl = el("input", { name: "offer_ttl", placeholder: "5m", value: repo?.offer_ttl_seconds ? seconds(repo.offer_ttl_seconds) : "" });
  const message = el("span", { class: "form-message", role: "status" });
  const form = el("form", { class: "repo-form", "data-testid": repo ? `edit-${repo.repo}` : "add-repo" },
    repo ? null : field("Repository", name),
    field("Review budget (max open PRs)", max), field("Area locks", locks),
    field("Lease TTL", leaseTtl), field("Offer TTL", offerTtl),
    el("button", { type: "submit" }, repo ? "Save" : "Add repository"), message);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const [owner, repoName] = name.value.trim().split("/");
    const body: RepoSettings = { max_open_prs: Number(max.value), area_locks: locks.checked,
                                 lease_ttl: leaseTtl.value.trim() || null, offer_ttl: offerTtl.value.trim() || null };
    if (repo) body.sensitive_areas = repo.sensitive_areas;
    put("/v1/repos/{owner}/{name}", body, { path: { owner: owner ?? "", name: repoName ?? "" } })
      .then(() => { message.textContent = "saved"; message.dataset.kind = "ok"; onSaved(); })
      .catch((error: Error) => { message.textContent = error instanceof ApiError ? error.message : String(error); message.dataset.kind = "error"; });
  });
  return form;
}

export const reposPage: Page = {
  path: "repos",
  title: "Repositories",
  mount(root, { live }) {
    const list = el("div", {});
    const editor = el("div", {});
    root.append(list, editor);
    let editing: string | null = null;

    const draw = (state: State): void => {
      const blocked = listState(state, "repos", state.repos, "no repositories yet");
      const since = Date.now() - WEEK_MS;
      const merged = (repo: string): number => (state.tasks ?? []).filter((t) =>
        t.repo === repo && t.status === "merged" && Date.parse(t.updated_at) >= since).length;
      replace(list, blocked ?? table(["Review budget", "Area locks", "Lease TTL", "Offer TTL", "Merged (7 d)", ""],
        state.repos!.map((r) => [
          budgetRow(r), text(r.area_locks ? "on" : "off"), text(seconds(r.lease_ttl_seconds)),
          text(seconds(r.offer_ttl_seconds)), text(merged(r.repo)),
          state.admin ? el("button", { type: "button", "data-edit": r.repo,
                                       onclick: () => { editing = r.repo; drawEditor(state); } }, "Edit") : text(""),
        ]), "repos-table", ["wide", "hide-narrow", "hide-narrow", "hide-narrow", "hide-narrow", ""]));
      drawEditor(state);
    };

    const drawEditor = (state: State): void => {
      if (!state.admin) return replace(editor, notice("info", "Sign in with the admin token to change budgets."));
      const repo = state.repos?.find((r) => r.repo === editing) ?? null;
      if (editor.contains(document.activeElement) && editor.dataset.editing === (editing ?? "")) return;  // keep typing
      editor.dataset.editing = editing ?? "";
      replace(editor, el("div", { class: "card" }, el("h2", {}, repo ? `Edit ${repo.repo}` : "Add a repository"),
        settingsForm(repo, () => { editing = null; void live.refresh(); })));
    };

    const unsubscribe = live.subscribe(draw);
    draw(live.state);
    return unsubscribe;
  },
};
