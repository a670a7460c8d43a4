import type { ShareChannel } from "./events";
export interface ShareLink {
    channel: Exclude<ShareChannel, "native">;
    name: string;
    href: string;
}
/** The parameter a shared link carries its share channel in (`?ref=CODE&ref_channel=whatsapp`):
 * the friend's landing reports it with the click, so the shop's funnel splits by channel. */
export declare const CHANNEL_PARAM = "ref_channel";
/** The link with its share channel; a bare code (no URL) stays as it is. */
export declare function withChannel(link: string, channel: string): string;
/** Links that open each network's own share screen with the message and the link (marked
 * with that network's channel) filled in. */
export declare function shareLinks(message: string, link: string, subject: string, emailName: string): ShareLink[];
