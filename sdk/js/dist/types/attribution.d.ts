import { type ApiConfig } from "./api";
/** What the shop's signup form sends to its own server, which passes it to `recordAction`
 * (`attributionToken`, or `referralCode` when the click could not be reported, and the device
 * fields in `context`). */
export interface Attribution {
    code: string;
    /** null when the visit could not be reported yet (the API was unreachable). */
    attributionToken: string | null;
    expiresAt: string | null;
    deviceId: string;
    deviceFingerprint: string;
}
export interface CaptureConfig extends ApiConfig {
    refParam: string;
    cookieDomain?: string;
}
export declare function getAttribution(cookieDomain?: string): Attribution | null;
export declare function clearAttribution(cookieDomain?: string): void;
/** Reads `?ref=CODE` (or the configured parameter) and the share channel beside it, keeps the code at once (so a signup works
 * even if the API is unreachable), removes the parameter from the address bar without a
 * reload, and reports the click; the returned token replaces the code for the program's
 * attribution window. A code kept earlier whose click was never reported is reported now. */
export declare function captureReferral(config: CaptureConfig): Promise<Attribution | null>;
