/** First-party storage that never throws: localStorage and cookies can be blocked (privacy
 * settings, sandboxed frames), and a blocked store must not break the shop's page. */
export declare function readLocal(key: string): string | null;
export declare function writeLocal(key: string, value: string | null): void;
export declare function readCookie(name: string): string | null;
/** `expires` null deletes the cookie. SameSite=Lax: sent when the visitor comes back through a
 * link, so the shop's server can read the attribution at signup too. */
export declare function writeCookie(name: string, value: string, expires: Date | null, domain?: string): void;
