import { Client, Options } from "./client.js";
export { Client, current } from "./client.js";
export type { Names, Options, PinSource, SwitchyardEvent, SwitchyardEventMap } from "./client.js";
/** The page's client: the one already installed (by the script tag, or an earlier call), else a new one. */
export declare function install(options?: Options): Client;
