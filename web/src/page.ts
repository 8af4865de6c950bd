import type { Live } from "./live";

export interface Ctx {
  live: Live;
  /** Re-render when admin rights change (sign in / out). */
  navigate(path: string): void;
}

export interface Page {
  path: string; // under /dashboard/, "" for the overview
  title: string;
  /** Build the page into root; return a cleanup function. */
  mount(root: HTMLElement, ctx: Ctx): () => void;
}
