import { call, type ApiConfig, type UserError } from "./api";
import { deviceFingerprint, deviceId } from "./device";
import { emit, report } from "./events";
import { CHANNEL_PARAM } from "./share";
import { readCookie, readLocal, writeCookie, writeLocal } from "./storage";

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

interface Stored {
  code: string;
  token: string | null;
  expiresAt: string | null;
}

const STORE_KEY = "referral_attribution";
const TOKEN_COOKIE = "referral_token";
const CODE_COOKIE = "referral_code";
const UNREPORTED_DAYS = 30; // how long a code is kept while its click could not be reported
const SUB_PARAM = "sub"; // an affiliate's tag on the link: ?ref=CODE&sub=newsletter
const SUB_ID = /^[^\s\p{C}]{1,64}$/u; // what the API accepts; anything else is left out, the click still counts

const TRACK_CLICK = `mutation($input: TrackClickInput!) { trackClick(input: $input) {
  attributionToken expiresAt repeated referralCode { code } userErrors { field code message } } }`;

interface TrackClickPayload {
  attributionToken: string | null;
  expiresAt: string | null;
  repeated: boolean;
  referralCode: { code: string } | null;
  userErrors: UserError[];
}

function load(): Stored | null {
  try {
    const stored = JSON.parse(readLocal(STORE_KEY) || "null") as Stored | null;
    if (stored?.code) return stored;
  } catch {
    /* unreadable: fall back to the cookies */
  }
  const code = readCookie(CODE_COOKIE);
  return code ? { code, token: readCookie(TOKEN_COOKIE), expiresAt: null } : null;
}

function save(stored: Stored | null, cookieDomain?: string): void {
  writeLocal(STORE_KEY, stored && JSON.stringify(stored));
  const expires = stored && new Date(stored.expiresAt ?? Date.now() + UNREPORTED_DAYS * 864e5);
  writeCookie(CODE_COOKIE, stored?.code ?? "", expires, cookieDomain);
  writeCookie(TOKEN_COOKIE, stored?.token ?? "", stored?.token ? expires : null, cookieDomain);
}

export function getAttribution(cookieDomain?: string): Attribution | null {
  const stored = load();
  if (!stored) return null;
  if (stored.expiresAt && Date.parse(stored.expiresAt) <= Date.now()) {
    save(null, cookieDomain); // past the program's attribution window
    return null;
  }
  return {
    code: stored.code,
    attributionToken: stored.token,
    expiresAt: stored.expiresAt,
    deviceId: deviceId(cookieDomain),
    deviceFingerprint: deviceFingerprint(),
  };
}

export function clearAttribution(cookieDomain?: string): void {
  save(null, cookieDomain);
}

/** Reads `?ref=CODE` (or the configured parameter) and the share channel beside it, keeps the code at once (so a signup works
 * even if the API is unreachable), removes the parameter from the address bar without a
 * reload, and reports the click; the returned token replaces the code for the program's
 * attribution window. A code kept earlier whose click was never reported is reported now. */
export async function captureReferral(config: CaptureConfig): Promise<Attribution | null> {
  let code: string | null = null;
  let channel: string | null = null;
  let subId: string | null = null;
  try {
    const url = new URL(location.href);
    code = url.searchParams.get(config.refParam)?.trim().slice(0, 64) || null;
    // where the link was shared (share.ts marks each share button's link), if it says
    const via = url.searchParams.get(CHANNEL_PARAM)?.trim().toLowerCase() ?? "";
    channel = code && /^[a-z0-9_-]{1,32}$/.test(via) ? via : null;
    // the affiliate's own tag on the link (`?sub=newsletter`), if the API would take it
    const sub = url.searchParams.get(SUB_PARAM)?.trim() ?? "";
    subId = code && SUB_ID.test(sub) ? sub : null;
    if (url.searchParams.has(config.refParam) || url.searchParams.has(CHANNEL_PARAM)) {
      url.searchParams.delete(config.refParam);
      url.searchParams.delete(CHANNEL_PARAM);
      url.searchParams.delete(SUB_PARAM);
      history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    }
  } catch {
    /* an unusual location (about:blank, sandboxed): nothing to read */
  }
  const earlier = load();
  if (code) save({ code, token: null, expiresAt: null }, config.cookieDomain);
  else if (earlier && !earlier.token) code = earlier.code;
  if (!code) return getAttribution(config.cookieDomain);

  const landingUrl = `${location.origin}${location.pathname}?${encodeURIComponent(config.refParam)}=${encodeURIComponent(code)}`;
  const payload = await call<TrackClickPayload>(config, "trackClick", TRACK_CLICK, {
    input: {
      code,
      deviceId: deviceId(config.cookieDomain),
      deviceFingerprint: deviceFingerprint(),
      landingUrl,
      ...(channel ? { channel } : {}),
      ...(subId ? { subId } : {}),
    },
  });
  if (payload?.userErrors.length) {
    const error = payload.userErrors[0];
    save(earlier?.token ? earlier : null, config.cookieDomain); // an unknown or inactive code replaces nothing
    report("trackClick", error.message, error.code);
  } else if (payload?.attributionToken && payload.referralCode) {
    const stored = { code: payload.referralCode.code, token: payload.attributionToken, expiresAt: payload.expiresAt };
    save(stored, config.cookieDomain);
    emit(document, "referral:click-tracked", {
      code: stored.code,
      attributionToken: stored.token,
      expiresAt: stored.expiresAt ?? "",
      repeated: payload.repeated,
    });
  }
  return getAttribution(config.cookieDomain);
}
