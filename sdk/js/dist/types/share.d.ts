import type { ShareChannel } from "./events";
export interface ShareLink {
    channel: Exclude<ShareChannel, "native">;
    name: string;
    href: string;
}
/** Links that open each network's own share screen with the message and the link filled in. */
export declare function shareLinks(message: string, url: string, subject: string, emailName: string): ShareLink[];
