import { Names } from "./core";
export interface Options {
    /** The router's names (the served script fills these in). */
    names?: Partial<Names>;
    /** The pin, when the app knows it better than the page does. */
    pin?: string;
    /** Other origins whose requests carry the pin too. */
    allow?: string[];
    /** Patch fetch, XMLHttpRequest, sendBeacon, WebSocket and EventSource. */
    global?: boolean;
    /** Largest random delay before a reload, unless the router says [2000 ms]. */
    reloadWindowMs?: number;
    /** No second reload when stale again this soon after one [60000 ms]. */
    loopGuardMs?: number;
    /** How often to ask the router whether an update is out [300000 ms; 0 = never]. */
    checkEveryMs?: number;
    /** Before a reload, unregister service workers and clear caches. */
    unregisterServiceWorker?: boolean;
}
/**
 * One per page. Events: `pinned`, `stale`, `reload-scheduled`,
 * `reload-suppressed`, `update-available` (each a CustomEvent with detail).
 */
export declare class Client extends EventTarget {
    readonly names: Names;
    pin: string | null;
    private opts;
    private scheduled;
    private known;
    /** The deployment that served this page (the pin may be a token). */
    private serving;
    private channel;
    private native;
    constructor(opts?: Options);
    private fromPage;
    private emit;
    /** Whether a request to `url` carries the pin, and its absolute URL. */
    private aim;
    /** `url` with the pin as query parameter, for sockets, streams and beacons. */
    url(url: string | URL): string;
    /** fetch with the pin header on same-origin (and allowed) requests. */
    fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
    private headers;
    /** Reacts to what a response says: stale pin, or a newer active one. */
    private watch;
    private update;
    /** Asks the router about this page's pin; called on focus and a timer. */
    check(): Promise<void>;
    /**
     * The pin is stale: drop it and reload this same URL once, after a random
     * delay, when the tab is visible and online. A second stale signal soon
     * after such a reload does not reload again: `reload-suppressed` tells the
     * app instead.
     */
    stale(reason: string, windowMs?: number, tell?: boolean): void;
    private whenReady;
    private reload;
    /**
     * A WebSocket that keeps its pin: reconnects with jittered backoff after
     * 1001 (router restart), 1006 or 1011, and recovers through a reload after
     * 1012. Events of the live socket are forwarded to the handlers.
     */
    socket(url: string, protocols?: string | string[], on?: Partial<Pick<WebSocket, "onopen" | "onmessage" | "onclose">>): {
        send: (data: string | ArrayBufferLike | Blob | ArrayBufferView) => void;
        close: (code?: number, reason?: string) => void;
        readonly socket: WebSocket;
    };
    /** Patches the page's own request APIs to carry the pin. */
    install(): void;
}
