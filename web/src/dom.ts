// DOM building without innerHTML: every piece of data goes in as a text node or a property.

type Child = Node | string | number | null | undefined | false;
type Children = Child | Children[];
type Props = Record<string, string | number | boolean | EventListener | undefined | null>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Children[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = String(value);
    } else if (name === "value" && "value" in node) {
      (node as unknown as { value: string }).value = String(value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node: Node, children: Children[]): void {
  for (const child of (children as unknown[]).flat(Infinity) as Child[]) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

export function replace(node: Element, ...children: Children[]): void {
  node.replaceChildren();
  append(node, children);
}

/** A loading, empty or error message in one consistent look. */
export function notice(kind: "loading" | "empty" | "error" | "info", text: string): HTMLElement {
  return el("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status", "data-state": kind }, text);
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function clockTime(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function table(headers: string[], rows: Node[][], testid: string, classes: string[] = []): HTMLElement {
  return el("div", { class: "table-wrap" },
    el("table", { "data-testid": testid },
      el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: classes[i] }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c, i) => el("td", { class: classes[i] }, c)))))));
}

export function text(value: string | number | null | undefined): Text {
  return document.createTextNode(value === null || value === undefined ? "—" : String(value));
}

export function badge(value: string, kind = value): HTMLElement {
  return el("span", { class: `badge badge-${kind}` }, value.replace(/_/g, " "));
}

/** A gauge of review budget use: in flight of max, with the parts spelled out. */
export function gauge(used: number, max: number, label: string, testid?: string): HTMLElement {
  const ratio = max > 0 ? Math.min(1, used / max) : 1;
  const level = ratio >= 1 ? "full" : ratio >= 0.67 ? "high" : "ok";
  const bar = el("div", { class: `gauge gauge-${level}`, role: "meter", "aria-valuemin": 0, "aria-valuemax": max,
                          "aria-valuenow": used, "aria-label": label, "data-testid": testid });
  const fill = el("div", { class: "gauge-fill" });
  fill.style.width = `${Math.round(ratio * 100)}%`;
  bar.appendChild(fill);
  return bar;
}

export function downloadBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function field(label: string, control: HTMLElement): HTMLElement {
  return el("label", { class: "field" }, el("span", {}, label), control);
}

export function select(name: string, options: [string, string][], value = ""): HTMLSelectElement {
  const node = el("select", { name }, options.map(([v, label]) => el("option", { value: v }, label)));
  node.value = value;
  return node;
}
