import { readCookie, readLocal, writeCookie, writeLocal } from "./storage";

const DEVICE_KEY = "referral_device";
const DEVICE_DAYS = 400; // the longest a browser keeps a cookie

/** A random id for this browser, kept first-party (localStorage and a cookie of the shop's
 * own domain): the fraud checks compare it with the referrer's. Nothing else is derived from it. */
export function deviceId(cookieDomain?: string): string {
  let id = readLocal(DEVICE_KEY) || readCookie(DEVICE_KEY);
  if (!id || !/^d_[0-9a-f]{32}$/.test(id)) {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    id = "d_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  writeLocal(DEVICE_KEY, id);
  writeCookie(DEVICE_KEY, id, new Date(Date.now() + DEVICE_DAYS * 864e5), cookieDomain);
  return id;
}

/** A coarse, one-way hash of what every page can see anyway: user agent, screen size and
 * colour depth, pixel ratio, timezone and language. Many people share one (the same phone
 * model and settings), so the fraud engine treats it as a weak signal only; it survives a
 * private window or cleared storage, which a device id does not. */
export function deviceFingerprint(): string {
  let timezone = "";
  try {
    timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    /* no Intl time zones */
  }
  const s = typeof screen === "object" ? screen : ({} as Screen);
  const seen = [navigator.userAgent, `${s.width}x${s.height}x${s.colorDepth}`, globalThis.devicePixelRatio, timezone, navigator.language];
  const text = seen.join("|");
  return "fp1_" + hash53(text, 1) + hash53(text, 2);
}

/** cyrb53: a fast 53-bit string hash (not cryptographic: the input is low-entropy anyway). */
function hash53(text: string, seed: number): string {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}
