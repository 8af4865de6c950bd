/** The parts of Obsidian's API the plugin uses, for tests: `obsidian` is aliased to this module (vitest) or
 * handed to main.js by the load test. Behaviour follows Obsidian's: components clear their intervals, events
 * and DOM listeners on unload; the vault keeps files in memory and the metadata cache parses frontmatter;
 * requestUrl makes real HTTP requests (to the real OWP server the tests start). */

import * as http from "node:http";
import * as https from "node:https";
import YAML from "yaml";

// ------------------------------------------------------------------ DOM helpers Obsidian adds to HTMLElement

interface ElOptions {
  cls?: string | string[];
  text?: string;
  attr?: Record<string, string | number | boolean | null>;
  href?: string;
  type?: string;
  value?: string;
  placeholder?: string;
  title?: string;
}

function applyOptions(el: HTMLElement, options?: ElOptions | string): void {
  if (!options) return;
  if (typeof options === "string") {
    el.className = options;
    return;
  }
  const classes = Array.isArray(options.cls) ? options.cls : options.cls ? options.cls.split(" ") : [];
  for (const cls of classes) if (cls) el.classList.add(cls);
  if (options.text !== undefined) el.textContent = options.text;
  for (const [name, value] of Object.entries(options.attr ?? {})) {
    if (value !== null && value !== false) el.setAttribute(name, String(value));
  }
  for (const key of ["href", "type", "value", "placeholder", "title"] as const) {
    if (options[key] !== undefined) (el as unknown as Record<string, string>)[key] = options[key] as string;
  }
}

export function installDomHelpers(target: typeof globalThis = globalThis): void {
  const proto = (target as unknown as { HTMLElement?: { prototype: HTMLElement } }).HTMLElement?.prototype as
    | (HTMLElement & Record<string, unknown>)
    | undefined;
  if (!proto || "createEl" in proto) return;
  Object.assign(proto, {
    createEl(this: HTMLElement, tag: string, options?: ElOptions | string, callback?: (el: HTMLElement) => void) {
      const el = this.ownerDocument.createElement(tag);
      applyOptions(el, options);
      this.appendChild(el);
      callback?.(el);
      return el;
    },
    createDiv(this: HTMLElement, options?: ElOptions | string) {
      return (this as unknown as { createEl: (t: string, o?: unknown) => HTMLElement }).createEl("div", options);
    },
    createSpan(this: HTMLElement, options?: ElOptions | string) {
      return (this as unknown as { createEl: (t: string, o?: unknown) => HTMLElement }).createEl("span", options);
    },
    empty(this: HTMLElement) {
      while (this.firstChild) this.removeChild(this.firstChild);
    },
    setText(this: HTMLElement, text: string) {
      this.textContent = text;
    },
    addClass(this: HTMLElement, ...classes: string[]) {
      this.classList.add(...classes);
    },
    removeClass(this: HTMLElement, ...classes: string[]) {
      this.classList.remove(...classes);
    },
    toggleClass(this: HTMLElement, cls: string, on: boolean) {
      this.classList.toggle(cls, on);
    },
    setAttr(this: HTMLElement, name: string, value: string | number | boolean | null) {
      if (value === null) this.removeAttribute(name);
      else this.setAttribute(name, String(value));
    },
  });
}

installDomHelpers();

function newElement(tag = "div"): HTMLElement {
  return document.createElement(tag);
}

// ------------------------------------------------------------------ events and components

export interface EventRef {
  source: Events;
  name: string;
  callback: (...args: unknown[]) => unknown;
}

export class Events {
  private handlers = new Map<string, EventRef[]>();

  on(name: string, callback: (...args: any[]) => unknown): EventRef {
    const ref = { source: this, name, callback };
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), ref]);
    return ref;
  }

  offref(ref: EventRef): void {
    this.handlers.set(ref.name, (this.handlers.get(ref.name) ?? []).filter((r) => r !== ref));
  }

  trigger(name: string, ...args: unknown[]): void {
    for (const ref of this.handlers.get(name) ?? []) ref.callback(...args);
  }

  listenerCount(name: string): number {
    return (this.handlers.get(name) ?? []).length;
  }
}

export class Component {
  _loaded = false;
  private cleanups: (() => void)[] = [];
  private children: Component[] = [];

  load(): void {
    if (this._loaded) return;
    this._loaded = true;
    this.onload();
  }

  unload(): void {
    if (!this._loaded) return;
    this._loaded = false;
    for (const child of this.children.splice(0)) child.unload();
    for (const cleanup of this.cleanups.splice(0).reverse()) cleanup();
    this.onunload();
  }

  onload(): void {}
  onunload(): void {}

  addChild<T extends Component>(child: T): T {
    this.children.push(child);
    if (this._loaded) child.load();
    return child;
  }

  register(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  registerEvent(ref: EventRef): void {
    this.register(() => ref.source.offref(ref));
  }

  registerInterval(id: number): number {
    this.register(() => window.clearInterval(id));
    return id;
  }

  registerDomEvent(el: HTMLElement | Window | Document, type: string, callback: (event: any) => unknown): void {
    el.addEventListener(type, callback as EventListener);
    this.register(() => el.removeEventListener(type, callback as EventListener));
  }
}

// ------------------------------------------------------------------ vault, metadata, files

export abstract class TAbstractFile {
  constructor(
    public vault: Vault,
    public path: string,
  ) {}

  get name(): string {
    return this.path.split("/").pop() ?? this.path;
  }
}

export class TFile extends TAbstractFile {
  stat = { ctime: Date.now(), mtime: Date.now(), size: 0 };

  get basename(): string {
    return this.name.replace(/\.[^.]*$/, "");
  }

  get extension(): string {
    return this.name.includes(".") ? (this.name.split(".").pop() ?? "") : "";
  }
}

export class TFolder extends TAbstractFile {}

export function normalizePath(path: string): string {
  return path.replace(/\\/g, "/").replace(/\/{2,}/g, "/").replace(/^\/+|\/+$/g, "") || "/";
}

export function parseYaml(text: string): any {
  return YAML.parse(text);
}

export function stringifyYaml(value: unknown): string {
  return YAML.stringify(value);
}

const FRONTMATTER = /^---\n([\s\S]*?)\n?---\n?/;

export function splitFrontmatter(text: string): { frontmatter: Record<string, unknown> | undefined; body: string } {
  const match = FRONTMATTER.exec(text);
  if (!match) return { frontmatter: undefined, body: text };
  const parsed = YAML.parse(match[1]);
  return { frontmatter: parsed && typeof parsed === "object" ? parsed : {}, body: text.slice(match[0].length) };
}

export class Vault extends Events {
  readonly contents = new Map<string, string>();
  private readonly files = new Map<string, TAbstractFile>();

  constructor(private readonly app: App) {
    super();
  }

  getAbstractFileByPath(path: string): TAbstractFile | null {
    return this.files.get(normalizePath(path)) ?? null;
  }

  getMarkdownFiles(): TFile[] {
    return [...this.files.values()].filter((f): f is TFile => f instanceof TFile && f.path.endsWith(".md"));
  }

  getFiles(): TFile[] {
    return [...this.files.values()].filter((f): f is TFile => f instanceof TFile);
  }

  async createFolder(path: string): Promise<TFolder> {
    const normal = normalizePath(path);
    if (this.files.has(normal)) throw new Error(`Folder already exists: ${normal}`);
    const parts = normal.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (!this.files.has(parent)) this.files.set(parent, new TFolder(this, parent));
    }
    const folder = new TFolder(this, normal);
    this.files.set(normal, folder);
    return folder;
  }

  async create(path: string, data: string): Promise<TFile> {
    const normal = normalizePath(path);
    if (this.files.has(normal)) throw new Error(`File already exists: ${normal}`);
    const parent = normal.split("/").slice(0, -1).join("/");
    if (parent && !this.files.has(parent)) throw new Error(`Folder does not exist: ${parent}`);
    const file = new TFile(this, normal);
    this.files.set(normal, file);
    this.contents.set(normal, data);
    this.trigger("create", file);
    this.app.metadataCache.update(file, data);
    return file;
  }

  async read(file: TFile): Promise<string> {
    const text = this.contents.get(file.path);
    if (text === undefined) throw new Error(`No such file: ${file.path}`);
    return text;
  }

  cachedRead(file: TFile): Promise<string> {
    return this.read(file);
  }

  async modify(file: TFile, data: string): Promise<void> {
    if (!this.contents.has(file.path)) throw new Error(`No such file: ${file.path}`);
    this.contents.set(file.path, data);
    file.stat.mtime = Date.now();
    this.trigger("modify", file);
    this.app.metadataCache.update(file, data);
  }
}

export interface CachedMetadata {
  frontmatter?: Record<string, any>;
}

export class MetadataCache extends Events {
  private readonly cache = new Map<string, CachedMetadata>();

  getFileCache(file: TFile): CachedMetadata | null {
    return this.cache.get(file.path) ?? null;
  }

  /** Re-parses a file, as Obsidian does after each write, and announces it with `changed`. */
  update(file: TFile, data: string): void {
    const metadata: CachedMetadata = { frontmatter: splitFrontmatter(data).frontmatter };
    this.cache.set(file.path, metadata);
    this.trigger("changed", file, data, metadata);
  }
}

export class FileManager {
  constructor(private readonly app: App) {}

  async processFrontMatter(file: TFile, fn: (frontmatter: any) => void): Promise<void> {
    const text = await this.app.vault.read(file);
    const { frontmatter, body } = splitFrontmatter(text);
    const data = frontmatter ?? {};
    fn(data);
    await this.app.vault.modify(file, `---\n${YAML.stringify(data)}---\n${body}`);
  }
}

// ------------------------------------------------------------------ workspace and views

export class WorkspaceLeaf {
  view: ItemView | null = null;

  constructor(readonly workspace: Workspace) {}

  async setViewState(state: { type: string; active?: boolean }): Promise<void> {
    await this.detachView();
    const create = this.workspace.viewCreators.get(state.type);
    if (!create) throw new Error(`no view registered for ${state.type}`);
    this.view = create(this);
    this.view.load();
    await this.view.onOpen();
  }

  async openFile(file: TFile): Promise<void> {
    this.workspace.activeFile = file;
  }

  getViewState(): { type: string } {
    return { type: this.view?.getViewType() ?? "empty" };
  }

  async detachView(): Promise<void> {
    const view = this.view;
    this.view = null;
    if (view) {
      await view.onClose();
      view.unload();
    }
  }

  detach(): void {
    void this.detachView();
    this.workspace.leaves = this.workspace.leaves.filter((l) => l !== this);
  }
}

export class Workspace extends Events {
  leaves: WorkspaceLeaf[] = [];
  readonly viewCreators = new Map<string, (leaf: WorkspaceLeaf) => ItemView>();
  activeFile: TFile | null = null;
  layoutReady = true;
  private readyCallbacks: (() => void)[] = [];

  getLeavesOfType(type: string): WorkspaceLeaf[] {
    return this.leaves.filter((l) => l.view?.getViewType() === type);
  }

  private newLeaf(): WorkspaceLeaf {
    const leaf = new WorkspaceLeaf(this);
    this.leaves.push(leaf);
    return leaf;
  }

  getRightLeaf(_split: boolean): WorkspaceLeaf {
    return this.newLeaf();
  }

  getLeaf(_newLeaf?: boolean | string): WorkspaceLeaf {
    return this.newLeaf();
  }

  revealLeaf(_leaf: WorkspaceLeaf): Promise<void> {
    return Promise.resolve();
  }

  getActiveFile(): TFile | null {
    return this.activeFile;
  }

  onLayoutReady(callback: () => void): void {
    if (this.layoutReady) callback();
    else this.readyCallbacks.push(callback);
  }

  detachLeavesOfType(type: string): void {
    for (const leaf of this.getLeavesOfType(type)) leaf.detach();
  }
}

export class App {
  vault: Vault;
  metadataCache = new MetadataCache();
  fileManager: FileManager;
  workspace = new Workspace();
  statusBarEl = newElement();
  ribbonEl = newElement();

  constructor() {
    this.vault = new Vault(this);
    this.fileManager = new FileManager(this);
  }
}

export abstract class ItemView extends Component {
  app: App;
  containerEl: HTMLElement;
  contentEl: HTMLElement;

  constructor(readonly leaf: WorkspaceLeaf) {
    super();
    this.app = leafApp.get(leaf.workspace) as App;
    this.containerEl = newElement();
    this.containerEl.appendChild(newElement());
    this.contentEl = newElement();
    this.containerEl.appendChild(this.contentEl);
  }

  abstract getViewType(): string;
  abstract getDisplayText(): string;

  getIcon(): string {
    return "document";
  }

  async onOpen(): Promise<void> {}
  async onClose(): Promise<void> {}
}

const leafApp = new WeakMap<Workspace, App>();

// ------------------------------------------------------------------ plugin

export interface PluginManifest {
  id: string;
  name: string;
  version: string;
  minAppVersion?: string;
  description?: string;
  author?: string;
  isDesktopOnly?: boolean;
}

export interface Command {
  id: string;
  name: string;
  callback?: () => unknown;
}

export class Plugin extends Component {
  settings?: unknown;
  readonly commands = new Map<string, Command>();
  readonly settingTabs: PluginSettingTab[] = [];
  data: unknown = null;
  private viewTypes: string[] = [];

  constructor(
    public app: App,
    public manifest: PluginManifest,
  ) {
    super();
    leafApp.set(app.workspace, app);
  }

  /** What Obsidian does when it enables a plugin: load the component and wait for its onload. */
  async enable(): Promise<void> {
    this._loaded = true;
    await (this.onload() as unknown as Promise<void> | undefined);
  }

  async loadData(): Promise<unknown> {
    return this.data === null ? null : JSON.parse(JSON.stringify(this.data));
  }

  async saveData(data: unknown): Promise<void> {
    this.data = JSON.parse(JSON.stringify(data));
  }

  addCommand(command: Command): Command {
    const full = { ...command, id: `${this.manifest.id}:${command.id}` };
    this.commands.set(full.id, full);
    this.register(() => this.commands.delete(full.id));
    return full;
  }

  addSettingTab(tab: PluginSettingTab): void {
    this.settingTabs.push(tab);
  }

  addStatusBarItem(): HTMLElement {
    const el = this.app.statusBarEl.createDiv({ cls: "status-bar-item" });
    this.register(() => el.remove());
    return el;
  }

  addRibbonIcon(icon: string, title: string, callback: (event: MouseEvent) => unknown): HTMLElement {
    const el = this.app.ribbonEl.createDiv({ cls: "side-dock-ribbon-action", attr: { "aria-label": title, "data-icon": icon } });
    this.registerDomEvent(el, "click", callback);
    this.register(() => el.remove());
    return el;
  }

  registerView(type: string, create: (leaf: WorkspaceLeaf) => ItemView): void {
    this.app.workspace.viewCreators.set(type, create);
    this.viewTypes.push(type);
    // As Obsidian does when a plugin is disabled: its views close and their types go away.
    this.register(() => {
      this.app.workspace.detachLeavesOfType(type);
      this.app.workspace.viewCreators.delete(type);
    });
  }
}

// ------------------------------------------------------------------ modals, settings, notices

export class Modal {
  static opened: Modal[] = [];
  containerEl = newElement();
  modalEl = newElement();
  titleEl = newElement();
  contentEl = newElement();

  constructor(public app: App) {
    this.modalEl.append(this.titleEl, this.contentEl);
    this.containerEl.append(this.modalEl);
  }

  open(): void {
    Modal.opened.push(this);
    this.onOpen();
  }

  close(): void {
    Modal.opened = Modal.opened.filter((m) => m !== this);
    this.onClose();
  }

  onOpen(): void {}
  onClose(): void {}
}

export class PluginSettingTab {
  containerEl = newElement();

  constructor(
    public app: App,
    public plugin: Plugin,
  ) {}

  display(): void {}
  hide(): void {}
}

type Change<T> = (value: T) => unknown;

abstract class ValueComponent<E extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement> {
  private changes: Change<string>[] = [];

  constructor(readonly el: E) {
    el.addEventListener("input", () => this.fire());
    el.addEventListener("change", () => this.fire());
  }

  getValue(): string {
    return this.el.value;
  }

  setValue(value: string): this {
    this.el.value = value;
    return this;
  }

  onChange(callback: Change<string>): this {
    this.changes.push(callback);
    return this;
  }

  /** What typing into the control does in the app: set the value and run the change callbacks. */
  async enter(value: string): Promise<void> {
    this.el.value = value;
    await this.fire();
  }

  private async fire(): Promise<void> {
    for (const change of this.changes) await change(this.el.value);
  }
}

export class TextComponent extends ValueComponent<HTMLInputElement> {
  get inputEl(): HTMLInputElement {
    return this.el;
  }

  setPlaceholder(text: string): this {
    this.el.placeholder = text;
    return this;
  }
}

export class TextAreaComponent extends ValueComponent<HTMLTextAreaElement> {
  get inputEl(): HTMLTextAreaElement {
    return this.el;
  }

  setPlaceholder(text: string): this {
    this.el.placeholder = text;
    return this;
  }
}

export class DropdownComponent extends ValueComponent<HTMLSelectElement> {
  get selectEl(): HTMLSelectElement {
    return this.el;
  }

  addOption(value: string, display: string): this {
    const option = this.el.ownerDocument.createElement("option");
    option.value = value;
    option.textContent = display;
    this.el.appendChild(option);
    return this;
  }

  addOptions(options: Record<string, string>): this {
    for (const [value, display] of Object.entries(options)) this.addOption(value, display);
    return this;
  }
}

export class ButtonComponent {
  private clicks: (() => unknown)[] = [];

  constructor(readonly buttonEl: HTMLButtonElement) {
    buttonEl.addEventListener("click", () => void this.click());
  }

  setButtonText(text: string): this {
    this.buttonEl.textContent = text;
    return this;
  }

  setCta(): this {
    this.buttonEl.classList.add("mod-cta");
    return this;
  }

  setDisabled(disabled: boolean): this {
    this.buttonEl.disabled = disabled;
    return this;
  }

  onClick(callback: () => unknown): this {
    this.clicks.push(callback);
    return this;
  }

  /** Clicks and waits for the click handlers (what a test needs to observe their effects). */
  async click(): Promise<void> {
    for (const click of this.clicks) await click();
  }
}

export class Setting {
  static all: Setting[] = [];
  settingEl: HTMLElement;
  nameEl: HTMLElement;
  descEl: HTMLElement;
  controlEl: HTMLElement;
  readonly components: (TextComponent | TextAreaComponent | DropdownComponent | ButtonComponent)[] = [];

  constructor(containerEl: HTMLElement) {
    this.settingEl = containerEl.createDiv({ cls: "setting-item" });
    const info = this.settingEl.createDiv({ cls: "setting-item-info" });
    this.nameEl = info.createDiv({ cls: "setting-item-name" });
    this.descEl = info.createDiv({ cls: "setting-item-description" });
    this.controlEl = this.settingEl.createDiv({ cls: "setting-item-control" });
    Setting.all.push(this);
  }

  setName(name: string): this {
    this.nameEl.textContent = name;
    return this;
  }

  setDesc(desc: string): this {
    this.descEl.textContent = desc;
    return this;
  }

  setHeading(): this {
    this.settingEl.classList.add("setting-item-heading");
    return this;
  }

  private add<T extends TextComponent | TextAreaComponent | DropdownComponent | ButtonComponent>(component: T, callback: (c: T) => unknown): this {
    this.components.push(component);
    callback(component);
    return this;
  }

  addText(callback: (c: TextComponent) => unknown): this {
    return this.add(new TextComponent(this.controlEl.createEl("input", { type: "text" })), callback);
  }

  addTextArea(callback: (c: TextAreaComponent) => unknown): this {
    return this.add(new TextAreaComponent(this.controlEl.createEl("textarea")), callback);
  }

  addDropdown(callback: (c: DropdownComponent) => unknown): this {
    return this.add(new DropdownComponent(this.controlEl.createEl("select")), callback);
  }

  addButton(callback: (c: ButtonComponent) => unknown): this {
    return this.add(new ButtonComponent(this.controlEl.createEl("button")), callback);
  }
}

export class Notice {
  static shown: string[] = [];
  noticeEl = newElement();

  constructor(
    readonly message: string,
    readonly duration?: number,
  ) {
    Notice.shown.push(message);
    this.noticeEl.textContent = message;
  }

  setMessage(message: string): this {
    Notice.shown.push(message);
    return this;
  }

  hide(): void {}
}

export class MarkdownView {}

/** Tests run as neither the desktop nor the mobile app: the event stream goes through fetch. */
export const Platform = { isDesktopApp: false, isMobileApp: false, isDesktop: false, isMobile: false };

// ------------------------------------------------------------------ requestUrl: real HTTP

export interface RequestUrlParam {
  url: string;
  method?: string;
  contentType?: string;
  body?: string | ArrayBuffer;
  headers?: Record<string, string>;
  throw?: boolean;
}

export interface RequestUrlResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: any;
  arrayBuffer: ArrayBuffer;
}

export function requestUrl(request: RequestUrlParam | string): Promise<RequestUrlResponse> {
  const param = typeof request === "string" ? { url: request } : request;
  const url = new URL(param.url);
  const headers: Record<string, string> = { ...(param.headers ?? {}) };
  if (param.contentType) headers["Content-Type"] = param.contentType;
  const body = typeof param.body === "string" ? Buffer.from(param.body) : param.body ? Buffer.from(param.body) : undefined;
  if (body) headers["Content-Length"] = String(body.length);
  const transport = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { method: param.method ?? "GET", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString("utf8");
        const status = res.statusCode ?? 0;
        if (status >= 400 && param.throw !== false) {
          reject(new Error(`Request failed, status ${status}`));
          return;
        }
        resolve({
          status,
          headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)])),
          text,
          get json() {
            return JSON.parse(text);
          },
          arrayBuffer: raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength),
        });
      });
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}
