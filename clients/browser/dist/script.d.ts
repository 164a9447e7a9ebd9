import { Client } from "./client.js";
declare global {
    interface Window {
        __SWITCHYARD__?: {
            query: string;
            header: string;
            prefix: string;
        };
        switchyard?: Client;
    }
}
