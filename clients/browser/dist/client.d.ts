import { Names } from "./core.js";
export type { Names } from "./core.js";
export interface Options {
    /** The router's names (the served script fills these in). */
    names?: Partial<Names>;
    /**
     * Where the router's client endpoints are, as a URL or path (default:
     * `names.prefix`, `/_switchyard`). Behind a proxy that strips a path
     * prefix, say `/app/_switchyard`; the script build works it out from
     * its own URL.
     */
    endpoint?: string;
    /** The pin, when the app knows it better than the page does. */
    pin?: string;
    /** Other origins whose requests carry the pin too. */
    allow?: string[];
    /** Patch fetch, XMLHttpRequest, sendBeacon, WebSocket and EventSource. */
    global?: boolean;
    /** Largest random delay before a reload, unless the router says [2000 ms]. */
    reloadWindowMs?: number;
    /** No second reload for the same pin this soon after one [60000 ms]. */
    loopGuardMs?: number;
    /** How often to ask the router whether an update is out [300000 ms; 0 = never]. */
    checkEveryMs?: number;
    /** Before a reload, unregister service workers and clear caches. */
    unregisterServiceWorker?: boolean;
}
/** Where the pin came from. */
export type PinSource = "option" | "server-timing" | "meta" | "url" | "status";
/** What each event's `detail` holds. */
export interface SwitchyardEventMap {
    /** The page knows its pin (at start, or once the router told it). */
    pinned: {
        pin: string;
        source: PinSource;
    };
    /** The router confirmed this page's pin is stale; a reload follows. */
    stale: {
        reason: string;
        pin: string | null;
    };
    /** The reload is set for `delay` ms from now (once visible and online). */
    "reload-scheduled": {
        reason: string;
        delay: number;
    };
    /** The same pin went stale right after its own reload: retried at `retryAt`. */
    "reload-suppressed": {
        reason: string;
        since: number;
        retryAt: number;
    };
    /**
     * A reload would bring another build: `newer` is a newer one, `rollback`
     * an older one the operator went back to.
     */
    "update-available": {
        kind: "newer" | "rollback";
        from: string;
        to: string;
        active: string | null;
    };
}
export type SwitchyardEvent<K extends keyof SwitchyardEventMap> = CustomEvent<SwitchyardEventMap[K]>;
/** The page's client, if one is installed. */
export declare function current(): Client | undefined;
type Listener<K extends keyof SwitchyardEventMap> = (this: Client, e: SwitchyardEvent<K>) => void;
/** One per page; see `SwitchyardEventMap` for its events. */
export declare class Client extends EventTarget {
    readonly names: Names;
    pin: string | null;
    private opts;
    private endpoint;
    private scheduled;
    /** The last `update-available` target told, so each is told once. */
    private told;
    /** The last active id seen in a response, to check only on change. */
    private seenActive;
    /** The deployment that served this page (the pin may be a token). */
    private serving;
    private channel;
    private undo;
    private native;
    constructor(opts?: Options);
    addEventListener<K extends keyof SwitchyardEventMap>(type: K, listener: Listener<K>, options?: boolean | AddEventListenerOptions): void;
    addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
    removeEventListener<K extends keyof SwitchyardEventMap>(type: K, listener: Listener<K>, options?: boolean | EventListenerOptions): void;
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
    /** Listens until `dispose()`. */
    private on;
    private fromPage;
    private emit;
    /** Whether a request to `url` carries the pin, and its absolute URL. */
    private aim;
    /** `url` with the pin as query parameter, for sockets, streams and beacons. */
    url(url: string | URL): string;
    /** fetch with the pin header on same-origin (and allowed) requests. */
    fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
    /** Reacts to what a response says: stale pin, or another active build. */
    private watch;
    private status;
    /**
     * Asks the router about this page's pin (on focus, on a timer, and when
     * a response hints something changed): stale means one reload; another
     * build a reload would bring means `update-available`.
     */
    check(): Promise<void>;
    /**
     * The pin is stale: drop it and reload this same URL once, after a random
     * delay, when the tab is visible and online. A signal other than the
     * router's own status answer is confirmed with it first, so a stray 409
     * or close code never reloads a healthy tab. If this same pin went stale
     * right after its own reload, `reload-suppressed` tells the app and the
     * reload is retried once the loop guard's window has passed.
     */
    stale(reason: string, windowMs?: number, confirmed?: boolean): void;
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
    /**
     * Patches the page's own request APIs to carry the pin. A page has one
     * patch: when another client (the script tag and the npm package both,
     * a hot reload, StrictMode) already installed, this one leaves the
     * globals alone.
     */
    install(): void;
    /** Removes every patch and listener this client made. */
    dispose(): void;
}
