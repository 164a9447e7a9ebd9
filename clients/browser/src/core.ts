// Pure decisions of the browser client, free of DOM globals so node's test
// runner can check them.

/** The router's names for the pin; the router serves them with its script. */
export interface Names {
  query: string;
  header: string;
  prefix: string;
}

export const DEFAULT_NAMES: Names = {
  query: "pulse_deployment",
  header: "x-pulse-deployment",
  prefix: "/_switchyard",
};

// The protocol's names, as crates/core/src/names.rs declares them (a test
// there reads this file and fails when the two differ).

/** The Server-Timing metrics the router labels every routed response with. */
export const PIN_METRIC = "switchyard-pin";
export const ACTIVE_METRIC = "switchyard-active";
export const DEPLOYMENT_METRIC = "switchyard-deployment";

/** Response headers the client reads. */
export const STALE_HEADER = "x-pulse-stale-affinity";
export const ACTIVE_HEADER = "x-switchyard-active";
export const RELOAD_WINDOW_HEADER = "x-switchyard-reload-window-ms";

/** The router's pin status endpoint, under the client prefix. */
export const STATUS_PATH = "/status";

interface TimingEntry {
  name: string;
  description: string;
}

/** The value of `metric` in a navigation entry's serverTiming list. */
export function timing(entries: readonly TimingEntry[] | undefined, metric: string): string | null {
  for (const e of entries || []) if (e.name === metric && e.description) return e.description;
  return null;
}

/**
 * Whether a request to `url` should carry the pin: same origin, or an
 * origin the app allow-listed. Anything else is another site's business.
 */
export function targets(url: URL, origin: string, allow: readonly string[]): boolean {
  // A WebSocket to the page's own host is same-origin for this purpose.
  const o = url.origin.replace(/^ws(s?):/, "http$1:");
  return o === origin || allow.includes(o);
}

/** `url` with the pin as query parameter (replacing any earlier one). */
export function withPin(url: URL, pin: string, names: Names): URL {
  const out = new URL(url.href);
  out.searchParams.set(names.query, pin);
  return out;
}

/** The page's address without the pin parameter, query and hash kept. */
export function withoutPin(href: string, names: Names): string {
  const url = new URL(href);
  if (!url.searchParams.has(names.query)) return href;
  url.searchParams.delete(names.query);
  return url.href;
}

/** A response that says the pin is stale: 409 with the stale header. */
export function isStale(status: number, header: (name: string) => string | null): boolean {
  return status === 409 && header(STALE_HEADER) === "1";
}

/** Close codes: 1012 means "reload" (the router's stale signal). */
export const RELOAD_CLOSE = 1012;

/** Close codes after which a socket reconnects with the same pin. */
export function reconnects(code: number): boolean {
  return code === 1001 || code === 1006 || code === 1011 || code === 1013;
}

/** A delay in [0, windowMs], from `random` in [0, 1). */
export function jitter(windowMs: number, random: number): number {
  return Math.floor(Math.max(0, windowMs) * random);
}

/** Exponential backoff with full jitter, capped. */
export function backoff(attempt: number, baseMs: number, capMs: number, random: number): number {
  return jitter(Math.min(capMs, baseMs * 2 ** attempt), random);
}

/** A reload this tab made for a stale pin: which pin, and when. */
export interface Reloaded {
  pin: string | null;
  at: number;
}

/** Reads what `store` kept of the last reload (older clients kept a bare time). */
export function parseReloaded(raw: string | null): Reloaded | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw);
    if (typeof v === "number") return { pin: null, at: v };
    if (v && typeof v.at === "number") return { pin: typeof v.pin === "string" ? v.pin : null, at: v.at };
  } catch {
    // Not ours.
  }
  return null;
}

/**
 * The loop guard, keyed on the pin: `pin` going stale may reload the tab
 * unless the last reload was for this same pin less than `windowMs` ago
 * (the reload brought the same stale page back: a cache or a service
 * worker). Returns 0 when a reload may go ahead, else how long to wait.
 */
export function reloadWait(last: Reloaded | null, pin: string | null, now: number, windowMs: number): number {
  if (!last || last.pin !== pin) return 0;
  return Math.max(0, last.at + windowMs - now);
}
