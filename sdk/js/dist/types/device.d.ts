/** A random id for this browser, kept first-party (localStorage and a cookie of the shop's
 * own domain): the fraud checks compare it with the referrer's. Nothing else is derived from it. */
export declare function deviceId(cookieDomain?: string): string;
/** A coarse, one-way hash of what every page can see anyway: user agent, screen size and
 * colour depth, pixel ratio, timezone and language. Many people share one (the same phone
 * model and settings), so the fraud engine treats it as a weak signal only; it survives a
 * private window or cleared storage, which a device id does not. */
export declare function deviceFingerprint(): string;
