import { type ApiConfig } from "./api";
import { type Colors } from "./colors";
import { type Locale } from "./i18n";
export interface MountOptions {
    /** The customer's id in the shop (what the shop's server signed). */
    customerId: string;
    /** Unix seconds when the shop's server signed. */
    timestamp: number;
    /** Hex HMAC-SHA256 of `${customerId}.${timestamp}` with the widget secret. */
    signature: string;
    /** "en", "ar" or "fa" (or a tag such as "ar-EG"); default: the page's language. */
    locale?: string;
    /** Needed only when the shop runs several programs. */
    programId?: string;
}
interface WidgetText {
    locale: string;
    title: string | null;
    description: string | null;
    shareMessage: string | null;
}
interface RewardTotal {
    kind: "CREDIT" | "POINTS" | "COMMISSION" | "DISCOUNT";
    unit: string;
    count: number;
    earned: number;
    pending: number;
}
export interface WidgetSession {
    code: string;
    shareUrl: string | null;
    successfulReferrals: number;
    pendingReferrals: number;
    rewards: RewardTotal[];
    program: {
        id: string;
        name: string;
        texts: WidgetText[];
        colors: Colors;
    };
}
export declare function render(host: HTMLElement, session: WidgetSession, language: [Locale, string]): HTMLElement;
/** Shows the share panel of a signed-in customer inside `host`'s shadow root (the shop's CSS
 * cannot reach in, the panel's cannot leak out). Resolves to false, after a quiet message in
 * the panel and a `referral:error` event, when the panel cannot be shown. */
export declare function mount(config: ApiConfig & {
    cookieDomain?: string;
}, host: HTMLElement, options: MountOptions): Promise<boolean>;
export {};
