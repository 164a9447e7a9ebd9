// The npm package: `install(options)` patches the page's request APIs (one
// client per page, however often it is called), `new Client(options)` gives
// a client without the global patch. Importing it does nothing, so it is
// safe in server-side rendering.
import { Client, Options, current } from "./client.js";

export { Client, current } from "./client.js";
export type { Names, Options, PinSource, SwitchyardEvent, SwitchyardEventMap } from "./client.js";

/** The page's client: the one already installed (by the script tag, or an earlier call), else a new one. */
export function install(options: Options = {}): Client {
  return current() || new Client({ global: true, ...options });
}
