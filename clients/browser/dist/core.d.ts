/** The router's names for the pin; the router serves them with its script. */
export interface Names {
    query: string;
    header: string;
    prefix: string;
}
export declare const DEFAULT_NAMES: Names;
/** The Server-Timing metrics the router labels every routed response with. */
export declare const PIN_METRIC = "switchyard-pin";
export declare const ACTIVE_METRIC = "switchyard-active";
export declare const DEPLOYMENT_METRIC = "switchyard-deployment";
/** Response headers the client reads. */
export declare const STALE_HEADER = "x-pulse-stale-affinity";
export declare const ACTIVE_HEADER = "x-switchyard-active";
export declare const RELOAD_WINDOW_HEADER = "x-switchyard-reload-window-ms";
/** The router's pin status endpoint, under the client prefix. */
export declare const STATUS_PATH = "/status";
interface TimingEntry {
    name: string;
    description: string;
}
/** The value of `metric` in a navigation entry's serverTiming list. */
export declare function timing(entries: readonly TimingEntry[] | undefined, metric: string): string | null;
/**
 * Whether a request to `url` should carry the pin: same origin, or an
 * origin the app allow-listed. Anything else is another site's business.
 */
export declare function targets(url: URL, origin: string, allow: readonly string[]): boolean;
/** `url` with the pin as query parameter (replacing any earlier one). */
export declare function withPin(url: URL, pin: string, names: Names): URL;
/** The page's address without the pin parameter, query and hash kept. */
export declare function withoutPin(href: string, names: Names): string;
/** A response that says the pin is stale: 409 with the stale header. */
export declare function isStale(status: number, header: (name: string) => string | null): boolean;
/** Close codes: 1012 means "reload" (the router's stale signal). */
export declare const RELOAD_CLOSE = 1012;
/** Close codes after which a socket reconnects with the same pin. */
export declare function reconnects(code: number): boolean;
/** A delay in [0, windowMs], from `random` in [0, 1). */
export declare function jitter(windowMs: number, random: number): number;
/** Exponential backoff with full jitter, capped. */
export declare function backoff(attempt: number, baseMs: number, capMs: number, random: number): number;
/** A reload this tab made for a stale pin: which pin, and when. */
export interface Reloaded {
    pin: string | null;
    at: number;
}
/** Reads what `store` kept of the last reload (older clients kept a bare time). */
export declare function parseReloaded(raw: string | null): Reloaded | null;
/**
 * The loop guard, keyed on the pin: `pin` going stale may reload the tab
 * unless the last reload was for this same pin less than `windowMs` ago
 * (the reload brought the same stale page back: a cache or a service
 * worker). Returns 0 when a reload may go ahead, else how long to wait.
 */
export declare function reloadWait(last: Reloaded | null, pin: string | null, now: number, windowMs: number): number;
export {};
