import { Client } from "./client";
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
