// The dashboard shell: header (connection state, admin sign-in), navigation, and the page router.
import "./style.css";
import { adminToken, ApiError, post } from "./api";
import { el, replace } from "./dom";
import { Live, type State } from "./live";
import type { Ctx, Page } from "./page";
import { analyticsPage } from "./pages/analytics";
import { auditPage } from "./pages/audit";
import { overviewPage } from "./pages/overview";
import { reposPage } from "./pages/repos";
import { systemPage } from "./pages/system";
import { tasksPage } from "./pages/tasks";
import { workersPage } from "./pages/workers";

const PAGES: Page[] = [overviewPage, tasksPage, workersPage, reposPage, analyticsPage, auditPage, systemPage];
const CONNECTION_TEXT: Record<State["connection"], string> = {
  connecting: "connecting…", live: "live", reconnecting: "reconnecting…", private: "private pool",
};

const live = new Live();
const app = document.getElementById("app")!;
const status = el("span", { class: "connection", "data-testid": "connection", role: "status" });
const adminArea = el("div", { class: "admin-area" });
const nav = el("nav", { class: "nav", "aria-label": "Pages" });
const main = el("main", { id: "main" });
let cleanup: () => void = () => undefined;
let shownAdmin = false;  // whether the header shows the admin signed in

const ctx: Ctx = { live, navigate };

function pageFor(pathname: string): Page {
  const rest = pathname.replace(/^\/dashboard\/?/, "").replace(/^\/$/, "").split("/")[0] ?? "";
  return PAGES.find((p) => p.path === rest) ?? overviewPage;
}

function href(page: Page): string {
  return page.path ? `/dashboard/${page.path}` : "/";
}

function navigate(path: string): void {
  if (path !== location.pathname + location.search) history.pushState(null, "", path);
  render();
}

function render(): void {
  cleanup();
  const page = pageFor(location.pathname);
  document.title = `${page.title} · OWP Pool`;
  replace(nav, PAGES.map((p) => el("a", {
    href: href(p), class: p === page ? "active" : "", "aria-current": p === page ? "page" : undefined,
    onclick: (e: Event) => { e.preventDefault(); navigate(href(p)); },
  }, p.title)));
  nav.querySelector(".active")?.scrollIntoView({ block: "nearest", inline: "nearest" });  // phones scroll the tabs
  const root = el("section", { class: "page", "data-page": page.path || "overview" });
  replace(main, el("h1", {}, page.title), root);
  if (live.state.connection === "private") {
    root.append(privateNotice());
    cleanup = () => undefined;
    return;
  }
  cleanup = page.mount(root, ctx);
}

function privateNotice(): HTMLElement {
  return el("div", { class: "card", "data-testid": "private" },
    el("p", {}, "This pool's dashboard is private (OWP_PUBLIC_DASHBOARD=false)."),
    el("p", {}, "Enter the admin token above to see it."));
}

function renderAdmin(): void {
  shownAdmin = adminToken.get() !== null;
  if (shownAdmin) {
    replace(adminArea, el("span", { class: "badge badge-admin", "data-testid": "admin-badge" }, "admin"),
      el("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
    return;
  }
  const input = el("input", { type: "password", name: "admin-token", placeholder: "admin token",
                              autocomplete: "off", "aria-label": "Admin token", required: true });
  const error = el("span", { class: "form-error", role: "alert" });
  const form = el("form", { class: "signin", "data-testid": "signin" }, input,
    el("button", { type: "submit" }, "Sign in"), error);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void signIn(input.value.trim(), error);
  });
  replace(adminArea, form);
}

async function signIn(token: string, error: HTMLElement): Promise<void> {
  adminToken.set(token);
  try {
    await post("/v1/events/stream-token", undefined);  // proves the token without changing anything
  } catch (e) {
    adminToken.clear();
    error.textContent = e instanceof ApiError && e.status === 401 ? "that is not the admin token" : (e as Error).message;
    return;
  }
  renderAdmin();
  await live.start();
  render();
}

function signOut(): void {
  adminToken.clear();
  renderAdmin();
  void live.start().then(render);
}

live.subscribe((state) => {
  status.textContent = CONNECTION_TEXT[state.connection];
  status.dataset.state = state.connection;
  if (shownAdmin && !state.admin) {  // the stream found the token rotated (401): show what the public sees
    shownAdmin = false;
    queueMicrotask(() => { renderAdmin(); render(); });
  }
});

replace(app,
  el("header", { class: "topbar" },
    el("a", { class: "brand", href: "/", onclick: (e: Event) => { e.preventDefault(); navigate("/"); } }, "OWP Pool"),
    status, adminArea),
  nav, main);
window.addEventListener("popstate", render);
renderAdmin();
status.textContent = CONNECTION_TEXT.connecting;
status.dataset.state = "connecting";
void live.start().then(render);
render();
