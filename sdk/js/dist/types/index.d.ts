/**
 * The Referral widget: captures `?ref=CODE` on landing, keeps the attribution for the shop's
 * signup, and shows a signed-in customer's share panel. No runtime dependencies.
 *
 *   import { Referral } from "@referral/widget";
 *   Referral.init({ publishableKey: "pk_...", apiUrl: "https://api.example" });
 *   Referral.mount(document.querySelector("#referral")!, { customerId, timestamp, signature });
 */
import { type Attribution } from "./attribution";
import { type MountOptions } from "./panel";
export type { Attribution } from "./attribution";
export type { ReferralEventMap, ShareChannel } from "./events";
export type { MountOptions } from "./panel";
export interface ReferralOptions {
    /** The merchant's publishable key (pk_...): safe in a page. */
    publishableKey: string;
    /** Where the Referral API runs, e.g. "https://api.example". */
    apiUrl: string;
    /** The query parameter of referral links; default "ref". */
    refParam?: string;
    /** Report the visit when the page opens with ?ref=CODE; default true. */
    autoTrack?: boolean;
    /** Share the attribution and device cookies across subdomains, e.g. ".shop.example". */
    cookieDomain?: string;
}
export declare const Referral: {
    /** Configure the widget and, unless autoTrack is false, report a `?ref=` landing. The
     * promise resolves (never rejects) once the visit is reported or given up. */
    init(options: ReferralOptions): Promise<Attribution | null>;
    /** The referral this visitor arrived with, for the shop's signup form, or null. */
    getAttribution(): Attribution | null;
    /** Resolves once a `?ref=` landing has been reported (or given up). */
    ready(): Promise<Attribution | null>;
    /** Forget the attribution (e.g. after the shop's server recorded the signup). */
    clearAttribution(): void;
    /** Show a signed-in customer's share panel in `element`; resolves to whether it could. */
    mount(element: HTMLElement, options: MountOptions): Promise<boolean>;
};
export default Referral;
