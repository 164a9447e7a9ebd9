// The browser half of skew protection: learn which deployment served this
// page, keep the page's requests on it, and recover once, cleanly, when the
// router says that deployment is gone.

import {
  ACTIVE_HEADER,
  ACTIVE_METRIC,
  DEFAULT_NAMES,
  DEPLOYMENT_METRIC,
  Names,
  PIN_METRIC,
  RELOAD_CLOSE,
  RELOAD_WINDOW_HEADER,
  STATUS_PATH,
  backoff,
  isStale,
  jitter,
  parseReloaded,
  reconnects,
  reloadWait,
  targets,
  timing,
  withPin,
  withoutPin,
} from "./core.js";

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
  pinned: { pin: string; source: PinSource };
  /** The router confirmed this page's pin is stale; a reload follows. */
  stale: { reason: string; pin: string | null };
  /** The reload is set for `delay` ms from now (once visible and online). */
  "reload-scheduled": { reason: string; delay: number };
  /** The same pin went stale right after its own reload: retried at `retryAt`. */
  "reload-suppressed": { reason: string; since: number; retryAt: number };
  /**
   * A reload would bring another build: `newer` is a newer one, `rollback`
   * an older one the operator went back to.
   */
  "update-available": { kind: "newer" | "rollback"; from: string; to: string; active: string | null };
}

export type SwitchyardEvent<K extends keyof SwitchyardEventMap> = CustomEvent<SwitchyardEventMap[K]>;

/** The router's answer to `{prefix}/status`. */
interface Status {
  state: "active" | "draining" | "pending" | "revoked" | "stale" | "unpinned";
  active: string | null;
  deployment: string | null;
  next: string | null;
  next_pin: string | null;
  update: { kind: "newer" | "rollback"; from: string; to: string } | null;
}

const RELOADED = "switchyard:reloaded";
/** The one client of a page, whoever installed it first (script or npm). */
const INSTANCE = Symbol.for("switchyard.client");

type Global = typeof globalThis & { [INSTANCE]?: Client };

function store(key: string, value?: string): string | null {
  try {
    if (value === undefined) return sessionStorage.getItem(key);
    sessionStorage.setItem(key, value);
  } catch {
    // Storage can be off (privacy modes); the client still works per page.
  }
  return null;
}

/** The page's client, if one is installed. */
export function current(): Client | undefined {
  return (globalThis as Global)[INSTANCE];
}

type Listener<K extends keyof SwitchyardEventMap> = (this: Client, e: SwitchyardEvent<K>) => void;

type AnyListener = ((e: never) => void) | EventListenerObject | null;

/** One per page; see `SwitchyardEventMap` for its events. */
export class Client extends EventTarget {
  readonly names: Names;
  pin: string | null = null;
  private opts: Options;
  private endpoint: string;
  private scheduled = false;
  /** The last `update-available` target told, so each is told once. */
  private told: string | null = null;
  /** The last active id seen in a response, to check only on change. */
  private seenActive: string | null = null;
  /** The deployment that served this page (the pin may be a token). */
  private serving: string | null = null;
  private channel: BroadcastChannel | null = null;
  private undo: Array<() => void> = [];
  private native = {
    fetch: globalThis.fetch?.bind(globalThis),
    WebSocket: globalThis.WebSocket,
    EventSource: globalThis.EventSource,
  };

  constructor(opts: Options = {}) {
    super();
    this.opts = opts;
    this.names = { ...DEFAULT_NAMES, ...opts.names };
    this.endpoint = (opts.endpoint || this.names.prefix).replace(/\/$/, "");
    // Server-side rendering: nothing to patch, nothing to learn.
    if (typeof window === "undefined" || typeof document === "undefined") return;
    const nav = navigation();
    const learnt = this.fromPage(nav);
    const later = (f: () => void) =>
      document.readyState === "loading" ? this.on(document, "DOMContentLoaded", f) : setTimeout(f);
    if (learnt) {
      this.pin = learnt[0];
      // Once the page's own scripts had a chance to listen.
      later(() => {
        this.emit("pinned", { pin: learnt[0], source: learnt[1] });
        // The document may say another deployment is active, it may have
        // come from a cache (back/forward, or a service worker's shell):
        // either way the router decides.
        const cached = nav && (nav.type === "back_forward" || nav.transferSize === 0);
        if (cached || (this.seenActive && this.seenActive !== this.serving)) void this.check();
      });
    } else {
      // No Server-Timing (Firefox hides it on plain http): ask the router
      // which deployment an unpinned load of this page gets. Requests
      // before the answer go unpinned.
      later(() => void this.check());
    }
    if (nav && nav.workerStart > 0 && !opts.unregisterServiceWorker)
      console.warn(
        "switchyard: this page came through a service worker; if it serves a cached page, " +
          "set unregisterServiceWorker (data-unregister-service-worker=\"true\") so a stale page can recover",
      );
    try {
      this.channel = new BroadcastChannel("switchyard");
      this.channel.onmessage = (e) => {
        // The sender asked the router; the same pin is as stale here.
        if (e.data && this.pin && e.data.stale === this.pin) this.stale("other-tab", undefined, true);
      };
    } catch {
      this.channel = null;
    }
    this.on(window, "pageshow", (e) => {
      // Restored from the back/forward cache: timers were frozen and the
      // world may have moved on; decide afresh.
      if ((e as PageTransitionEvent).persisted) {
        this.scheduled = false;
        void this.check();
      }
    });
    const check = () => document.visibilityState === "visible" && void this.check();
    this.on(window, "focus", check);
    this.on(document, "visibilitychange", check);
    const every = opts.checkEveryMs ?? 300000;
    if (every > 0) {
      const t = setInterval(check, every);
      this.undo.push(() => clearInterval(t));
    }
    if (opts.global) this.install();
  }

  addEventListener<K extends keyof SwitchyardEventMap>(type: K, listener: Listener<K>, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: AnyListener, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  removeEventListener<K extends keyof SwitchyardEventMap>(type: K, listener: Listener<K>, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: AnyListener, options?: boolean | EventListenerOptions): void {
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  /** Listens until `dispose()`. */
  private on(target: EventTarget, type: string, f: (e: Event) => void): void {
    target.addEventListener(type, f);
    this.undo.push(() => target.removeEventListener(type, f));
  }

  private fromPage(nav: PerformanceNavigationTiming | undefined): [string, PinSource] | null {
    if (this.opts.pin) return [this.opts.pin, "option"];
    const label = timing(nav && nav.serverTiming, PIN_METRIC);
    if (label) {
      this.seenActive = timing(nav && nav.serverTiming, ACTIVE_METRIC);
      this.serving = timing(nav && nav.serverTiming, DEPLOYMENT_METRIC);
      return [label, "server-timing"];
    }
    const meta = document.querySelector(`meta[name="${PIN_METRIC}"]`);
    const content = meta && meta.getAttribute("content");
    if (content) return [content, "meta"];
    const inUrl = new URL(location.href).searchParams.get(this.names.query);
    return inUrl ? [inUrl, "url"] : null;
  }

  private emit<K extends keyof SwitchyardEventMap>(type: K, detail: SwitchyardEventMap[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Whether a request to `url` carries the pin, and its absolute URL. */
  private aim(url: string | URL): URL | null {
    if (!this.pin) return null;
    const u = new URL(String(url), location.href);
    return targets(u, location.origin, this.opts.allow || []) ? u : null;
  }

  /** `url` with the pin as query parameter, for sockets, streams and beacons. */
  url(url: string | URL): string {
    const u = this.aim(url);
    return u && this.pin ? withPin(u, this.pin, this.names).href : String(url);
  }

  /** fetch with the pin header on same-origin (and allowed) requests. */
  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    if (!this.aim(input instanceof Request ? input.url : input)) return this.native.fetch(input, init);
    const req = new Request(input, init);
    // `set`, not `append`: one pin, whatever the app or another patch put there.
    const headers = new Headers(req.headers);
    if (this.pin) headers.set(this.names.header, this.pin);
    const res = await this.native.fetch(new Request(req, { headers }));
    this.watch(res.status, (h) => res.headers.get(h));
    return res;
  };

  /** Reacts to what a response says: stale pin, or another active build. */
  private watch(status: number, header: (name: string) => string | null): void {
    if (isStale(status, header)) {
      const ms = Number(header(RELOAD_WINDOW_HEADER));
      this.stale("http", Number.isFinite(ms) && ms > 0 ? ms : undefined);
      return;
    }
    const active = header(ACTIVE_HEADER);
    if (active && active !== this.seenActive) {
      this.seenActive = active;
      void this.check();
    }
  }

  private async status(): Promise<Status | null> {
    if (!this.native.fetch) return null;
    try {
      const res = await this.native.fetch(this.endpoint + STATUS_PATH, {
        headers: this.pin ? { [this.names.header]: this.pin } : {},
        cache: "no-store",
        credentials: "same-origin",
      });
      return res.ok ? await res.json() : null;
    } catch {
      // Offline or the router is restarting: the next check will tell.
      return null;
    }
  }

  /**
   * Asks the router about this page's pin (on focus, on a timer, and when
   * a response hints something changed): stale means one reload; another
   * build a reload would bring means `update-available`.
   */
  async check(): Promise<void> {
    if (typeof window === "undefined") return;
    const s = await this.status();
    if (!s) return;
    if (!this.pin) {
      if (s.next_pin && !this.pin) {
        this.pin = s.next_pin;
        this.serving = s.next;
        this.emit("pinned", { pin: s.next_pin, source: "status" });
      }
      return;
    }
    if (s.state === "stale") return this.stale("status", undefined, true);
    if (s.update && s.update.to !== this.told) {
      this.told = s.update.to;
      this.emit("update-available", { ...s.update, active: s.active });
    } else if (!s.update) {
      this.told = null;
    }
  }

  /**
   * The pin is stale: drop it and reload this same URL once, after a random
   * delay, when the tab is visible and online. A signal other than the
   * router's own status answer is confirmed with it first, so a stray 409
   * or close code never reloads a healthy tab. If this same pin went stale
   * right after its own reload, `reload-suppressed` tells the app and the
   * reload is retried once the loop guard's window has passed.
   */
  stale(reason: string, windowMs?: number, confirmed = false): void {
    if (this.scheduled || typeof window === "undefined") return;
    if (!confirmed) {
      void this.status().then((s) => s && s.state === "stale" && this.stale(reason, windowMs, true));
      return;
    }
    this.scheduled = true;
    this.emit("stale", { reason, pin: this.pin });
    if (reason !== "other-tab" && this.channel) this.channel.postMessage({ stale: this.pin });
    const last = parseReloaded(store(RELOADED));
    const wait = reloadWait(last, this.pin, Date.now(), this.opts.loopGuardMs ?? 60000);
    if (wait > 0 && last) {
      this.emit("reload-suppressed", { reason, since: last.at, retryAt: Date.now() + wait });
      const t = setTimeout(() => {
        this.scheduled = false;
        void this.check();
      }, wait);
      this.undo.push(() => clearTimeout(t));
      return;
    }
    const delay = jitter(windowMs ?? this.opts.reloadWindowMs ?? 2000, Math.random());
    this.emit("reload-scheduled", { reason, delay });
    setTimeout(() => this.whenReady(() => void this.reload()), delay);
  }

  private whenReady(go: () => void): void {
    const ready = () => document.visibilityState === "visible" && navigator.onLine !== false;
    if (ready()) return go();
    const again = () => {
      if (!ready()) return;
      document.removeEventListener("visibilitychange", again);
      removeEventListener("online", again);
      go();
    };
    document.addEventListener("visibilitychange", again);
    addEventListener("online", again);
  }

  private async reload(): Promise<void> {
    if (!this.scheduled) return; // reset by a back/forward restore
    if (this.opts.unregisterServiceWorker) {
      try {
        const regs = (await navigator.serviceWorker?.getRegistrations()) || [];
        await Promise.all(regs.map((r) => r.unregister()));
        if (globalThis.caches) await Promise.all((await caches.keys()).map((k) => caches.delete(k)));
      } catch {
        // Best effort: reload all the same.
      }
    }
    store(RELOADED, JSON.stringify({ pin: this.pin, at: Date.now() }));
    const href = withoutPin(location.href, this.names);
    if (href !== location.href) history.replaceState(history.state, "", href);
    location.reload();
  }

  /**
   * A WebSocket that keeps its pin: reconnects with jittered backoff after
   * 1001 (router restart), 1006 or 1011, and recovers through a reload after
   * 1012. Events of the live socket are forwarded to the handlers.
   */
  socket(url: string, protocols?: string | string[], on: Partial<Pick<WebSocket, "onopen" | "onmessage" | "onclose">> = {}) {
    let attempt = 0;
    let ws: WebSocket;
    let closed = false;
    const open = () => {
      ws = new this.native.WebSocket(this.url(url), protocols);
      ws.onopen = (e) => {
        attempt = 0;
        on.onopen && on.onopen.call(ws, e);
      };
      ws.onmessage = (e) => on.onmessage && on.onmessage.call(ws, e);
      ws.onclose = (e) => {
        on.onclose && on.onclose.call(ws, e);
        if (closed) return;
        if (e.code === RELOAD_CLOSE) return this.stale("websocket");
        if (reconnects(e.code)) {
          if (e.code === 1006) void this.check();
          setTimeout(open, backoff(attempt++, 250, 30000, Math.random()));
        }
      };
    };
    open();
    return {
      send: (data: string | ArrayBufferLike | Blob | ArrayBufferView) => ws.send(data),
      close: (code?: number, reason?: string) => {
        closed = true;
        ws.close(code, reason);
      },
      get socket() {
        return ws;
      },
    };
  }

  /**
   * Patches the page's own request APIs to carry the pin. A page has one
   * patch: when another client (the script tag and the npm package both,
   * a hot reload, StrictMode) already installed, this one leaves the
   * globals alone.
   */
  install(): void {
    const g = globalThis as Global;
    if (typeof window === "undefined" || g[INSTANCE]) return;
    g[INSTANCE] = this;
    const self = this;
    const put = <T extends object, K extends keyof T>(obj: T, key: K, value: T[K]) => {
      const before = obj[key];
      obj[key] = value;
      this.undo.push(() => {
        obj[key] = before;
      });
    };
    put(globalThis, "fetch", this.fetch);
    type Xhr = XMLHttpRequest & { _sy?: boolean; _syPin?: boolean };
    const proto = XMLHttpRequest.prototype;
    const { open, send, setRequestHeader } = proto;
    put(proto, "open", function (this: Xhr, method: string, url: string | URL, ...rest: unknown[]) {
      this._sy = !!self.aim(url);
      this._syPin = false;
      // @ts-expect-error forwarding the optional async/user/password
      return open.call(this, method, url, ...rest);
    } as typeof open);
    put(proto, "setRequestHeader", function (this: Xhr, name: string, value: string) {
      // XHR can only append; the pin is set once, in send.
      if (this._sy && self.pin && name.toLowerCase() === self.names.header) return;
      return setRequestHeader.call(this, name, value);
    });
    put(proto, "send", function (this: Xhr, body?: Document | XMLHttpRequestBodyInit | null) {
      if (this._sy && self.pin && !this._syPin) {
        this._syPin = true;
        setRequestHeader.call(this, self.names.header, self.pin);
      }
      this.addEventListener("loadend", () => self.watch(this.status, (h) => this.getResponseHeader(h)));
      return send.call(this, body);
    });
    if (navigator.sendBeacon) {
      const beacon = navigator.sendBeacon.bind(navigator);
      // A beacon cannot carry headers: the pin goes in its URL.
      put(navigator, "sendBeacon", (url: string | URL, data?: BodyInit | null) => beacon(self.url(url), data));
    }
    const NativeWS = this.native.WebSocket;
    put(
      globalThis,
      "WebSocket",
      class extends NativeWS {
        constructor(url: string | URL, protocols?: string | string[]) {
          super(self.url(url), protocols);
          this.addEventListener("close", (e) => {
            if (e.code === RELOAD_CLOSE) self.stale("websocket");
            else if (e.code === 1006) void self.check();
          });
        }
      },
    );
    const NativeES = this.native.EventSource;
    if (NativeES)
      put(
        globalThis,
        "EventSource",
        class extends NativeES {
          constructor(url: string | URL, init?: EventSourceInit) {
            super(self.url(url), init);
            // The stream ended or failed (a revoked deployment's streams
            // are ended by the router): ask before reconnecting blindly.
            this.addEventListener("error", () => void self.check());
          }
        },
      );
  }

  /** Removes every patch and listener this client made. */
  dispose(): void {
    for (const f of this.undo.splice(0).reverse()) f();
    const g = globalThis as Global;
    if (g[INSTANCE] === this) delete g[INSTANCE];
    this.channel?.close();
    this.channel = null;
  }
}

function navigation(): PerformanceNavigationTiming | undefined {
  try {
    return performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined;
  } catch {
    return undefined;
  }
}
