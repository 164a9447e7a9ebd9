// The browser half of skew protection: learn which deployment served this
// page, keep the page's requests on it, and recover once, cleanly, when the
// router says that deployment is gone.

import {
  ACTIVE_METRIC,
  DEFAULT_NAMES,
  DEPLOYMENT_METRIC,
  Names,
  PIN_METRIC,
  RELOAD_CLOSE,
  backoff,
  isStale,
  jitter,
  mayReload,
  reconnects,
  targets,
  timing,
  withPin,
  withoutPin,
} from "./core";

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

const KEY = "switchyard:pin";
const RELOADED = "switchyard:reloaded-at";

function store(key: string, value?: string | null): string | null {
  try {
    if (value === undefined) return sessionStorage.getItem(key);
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // Storage can be off (privacy modes); the client still works per page.
  }
  return null;
}

/**
 * One per page. Events: `pinned`, `stale`, `reload-scheduled`,
 * `reload-suppressed`, `update-available` (each a CustomEvent with detail).
 */
export class Client extends EventTarget {
  readonly names: Names;
  pin: string | null;
  private opts: Options;
  private scheduled = false;
  private known: string | null = null;
  /** The deployment that served this page (the pin may be a token). */
  private serving: string | null = null;
  private channel: BroadcastChannel | null = null;
  private native = {
    fetch: globalThis.fetch?.bind(globalThis),
    WebSocket: globalThis.WebSocket,
    EventSource: globalThis.EventSource,
  };

  constructor(opts: Options = {}) {
    super();
    this.opts = opts;
    this.names = { ...DEFAULT_NAMES, ...opts.names };
    this.pin = opts.pin || this.fromPage() || store(KEY);
    if (this.pin) {
      store(KEY, this.pin);
      // Once the page's own scripts had a chance to listen.
      const pin = this.pin;
      const active = this.known;
      this.known = null;
      const tell = () => {
        this.emit("pinned", { pin });
        // The document itself may say a newer deployment is active.
        if (active) this.update(active, this.serving || pin);
      };
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", tell);
      else setTimeout(tell);
    }
    try {
      this.channel = new BroadcastChannel("switchyard");
      this.channel.onmessage = (e) => {
        if (e.data && e.data.stale === this.pin) this.stale("other-tab", undefined, false);
      };
    } catch {
      this.channel = null;
    }
    addEventListener("pageshow", (e) => {
      // Restored from the back/forward cache: timers were frozen and the
      // world may have moved on; decide afresh.
      if ((e as PageTransitionEvent).persisted) {
        this.scheduled = false;
        void this.check();
      }
    });
    const check = () => document.visibilityState === "visible" && void this.check();
    addEventListener("focus", check);
    document.addEventListener("visibilitychange", check);
    const every = opts.checkEveryMs ?? 300000;
    if (every > 0) setInterval(check, every);
    if (opts.global) this.install();
  }

  private fromPage(): string | null {
    try {
      const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined;
      const label = timing(nav && nav.serverTiming, PIN_METRIC);
      if (label) {
        this.known = timing(nav && nav.serverTiming, ACTIVE_METRIC);
        this.serving = timing(nav && nav.serverTiming, DEPLOYMENT_METRIC);
        return label;
      }
    } catch {
      // No Resource Timing here.
    }
    const meta = document.querySelector('meta[name="switchyard-pin"]');
    return (meta && meta.getAttribute("content")) || null;
  }

  private emit(type: string, detail: object): void {
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
    const res = await this.native.fetch(new Request(req, { headers: this.headers(req.headers) }));
    this.watch(res.status, (h) => res.headers.get(h));
    return res;
  };

  private headers(from: Headers): Headers {
    const h = new Headers(from);
    if (this.pin) h.set(this.names.header, this.pin);
    return h;
  }

  /** Reacts to what a response says: stale pin, or a newer active one. */
  private watch(status: number, header: (name: string) => string | null): void {
    if (isStale(status, header)) {
      const ms = Number(header("x-switchyard-reload-window-ms"));
      this.stale("http", Number.isFinite(ms) && ms > 0 ? ms : undefined);
      return;
    }
    const active = header("x-switchyard-active");
    if (active) this.update(active, header("x-pulse-selected-deployment"));
  }

  private update(active: string, serving: string | null): void {
    if (serving && active !== serving && active !== this.known) {
      this.known = active;
      this.emit("update-available", { active, serving });
    }
  }

  /** Asks the router about this page's pin; called on focus and a timer. */
  async check(): Promise<void> {
    if (!this.pin || !this.native.fetch) return;
    try {
      const res = await this.native.fetch(this.names.prefix + "/status", {
        headers: { [this.names.header]: this.pin },
        cache: "no-store",
      });
      const s = await res.json();
      if (s.state === "stale") this.stale("status");
      else if (s.active) this.update(s.active, s.deployment || s.pin);
    } catch {
      // Offline or the router is restarting: the next check will tell.
    }
  }

  /**
   * The pin is stale: drop it and reload this same URL once, after a random
   * delay, when the tab is visible and online. A second stale signal soon
   * after such a reload does not reload again: `reload-suppressed` tells the
   * app instead.
   */
  stale(reason: string, windowMs?: number, tell = true): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.emit("stale", { reason, pin: this.pin });
    if (tell && this.channel) this.channel.postMessage({ stale: this.pin });
    const last = Number(store(RELOADED)) || null;
    const guard = this.opts.loopGuardMs ?? 60000;
    if (!mayReload(last, Date.now(), guard)) {
      this.emit("reload-suppressed", { reason, since: last });
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
    store(RELOADED, String(Date.now()));
    store(KEY, null);
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

  /** Patches the page's own request APIs to carry the pin. */
  install(): void {
    const self = this;
    globalThis.fetch = this.fetch;
    const open = XMLHttpRequest.prototype.open;
    const send = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.open = function (this: XMLHttpRequest & { _sy?: boolean }, method: string, url: string | URL, ...rest: unknown[]) {
      this._sy = !!self.aim(url);
      // @ts-expect-error forwarding the optional async/user/password
      return open.call(this, method, url, ...rest);
    } as typeof open;
    XMLHttpRequest.prototype.send = function (this: XMLHttpRequest & { _sy?: boolean }, body?: Document | XMLHttpRequestBodyInit | null) {
      if (this._sy && self.pin) this.setRequestHeader(self.names.header, self.pin);
      this.addEventListener("loadend", () => self.watch(this.status, (h) => this.getResponseHeader(h)));
      return send.call(this, body);
    };
    if (navigator.sendBeacon) {
      const beacon = navigator.sendBeacon.bind(navigator);
      // A beacon cannot carry headers: the pin goes in its URL.
      navigator.sendBeacon = (url, data) => beacon(self.url(url), data);
    }
    const NativeWS = this.native.WebSocket;
    globalThis.WebSocket = class extends NativeWS {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(self.url(url), protocols);
        this.addEventListener("close", (e) => {
          if (e.code === RELOAD_CLOSE) self.stale("websocket");
          else if (e.code === 1006) void self.check();
        });
      }
    };
    const NativeES = this.native.EventSource;
    if (NativeES)
      globalThis.EventSource = class extends NativeES {
        constructor(url: string | URL, init?: EventSourceInit) {
          super(self.url(url), init);
          this.addEventListener("error", () => this.readyState === 2 && void self.check());
        }
      };
  }
}
