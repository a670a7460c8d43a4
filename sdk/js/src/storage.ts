/** First-party storage that never throws: localStorage and cookies can be blocked (privacy
 * settings, sandboxed frames), and a blocked store must not break the shop's page. */

export function readLocal(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function writeLocal(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    /* storage blocked: the cookie copy still works */
  }
}

export function readCookie(name: string): string | null {
  try {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
  } catch {
    /* cookies blocked */
  }
  return null;
}

/** `expires` null deletes the cookie. SameSite=Lax: sent when the visitor comes back through a
 * link, so the shop's server can read the attribution at signup too. */
export function writeCookie(name: string, value: string, expires: Date | null, domain?: string): void {
  try {
    const when = expires ?? new Date(0);
    let cookie = `${name}=${encodeURIComponent(value)}; Expires=${when.toUTCString()}; Path=/; SameSite=Lax`;
    if (domain) cookie += `; Domain=${domain}`;
    if (location.protocol === "https:") cookie += "; Secure";
    document.cookie = cookie;
  } catch {
    /* cookies blocked */
  }
}
