import { beforeEach, describe, expect, it, vi } from "vitest";
import { captureReferral } from "../../src/attribution";
import { Referral } from "../../src/index";
import { answer, clearBrowserState, CONFIG, cookies, events } from "./helpers";

const CAPTURE = { ...CONFIG, refParam: "ref" };
const IN_30_DAYS = new Date(Date.now() + 30 * 864e5).toISOString();
const TRACKED = {
  data: {
    trackClick: {
      attributionToken: "at_token1",
      expiresAt: IN_30_DAYS,
      repeated: false,
      referralCode: { code: "JANE-K7M3" },
      userErrors: [],
    },
  },
};

function land(path: string): void {
  history.replaceState(null, "", path);
}

describe("landing with ?ref=CODE", () => {
  beforeEach(() => {
    clearBrowserState();
    vi.spyOn(console, "warn").mockImplementation(() => {});
  });

  it("reports the click with the device and keeps the token in a cookie and localStorage", async () => {
    land("/shoes?color=red&ref=jane-k7m3#sizes");
    const calls = answer(TRACKED);
    const tracked = events("referral:click-tracked");

    const attribution = await captureReferral(CAPTURE);

    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe("https://api.example/graphql?pk=pk_test123");
    expect(calls[0].init.headers).toMatchObject({ Authorization: "Bearer pk_test123", "Content-Type": "application/json" });
    expect(calls[0].init.credentials).toBe("omit");
    const input = calls[0].body.variables.input;
    expect(input.code).toBe("jane-k7m3");
    expect(input.deviceId).toMatch(/^d_[0-9a-f]{32}$/);
    expect(input.deviceFingerprint).toMatch(/^fp1_/);
    expect(input.landingUrl).toBe("https://shop.example/shoes?ref=jane-k7m3"); // no other parameters sent

    expect(attribution).toMatchObject({ code: "JANE-K7M3", attributionToken: "at_token1", expiresAt: IN_30_DAYS });
    expect(JSON.parse(localStorage.getItem("referral_attribution")!)).toEqual({
      code: "JANE-K7M3",
      token: "at_token1",
      expiresAt: IN_30_DAYS,
    });
    expect(cookies()).toMatchObject({ referral_token: "at_token1", referral_code: "JANE-K7M3" });
    expect(tracked.map((e) => e.detail)).toEqual([
      { code: "JANE-K7M3", attributionToken: "at_token1", expiresAt: IN_30_DAYS, repeated: false },
    ]);
  });

  it("passes an affiliate's sub-id along with the click and takes it out of the address bar", async () => {
    land("/shoes?ref=jane-k7m3&sub=newsletter&color=red");
    const calls = answer(TRACKED);

    await captureReferral(CAPTURE);

    expect(calls[0].body.variables.input.subId).toBe("newsletter");
    expect(location.search).toBe("?color=red");
  });

  it("leaves out a sub-id the API would refuse, and still reports the click", async () => {
    land("/shoes?ref=jane-k7m3&sub=two%20words");
    const calls = answer(TRACKED);

    await captureReferral(CAPTURE);

    expect(calls).toHaveLength(1);
    expect(calls[0].body.variables.input).not.toHaveProperty("subId");
  });

  it("removes only its parameter from the address bar, without a reload", async () => {
    land("/shoes?color=red&ref=JANE-K7M3&size=42#sizes");
    answer(TRACKED);
    const before = history.length;
    await captureReferral(CAPTURE);
    expect(location.pathname + location.search + location.hash).toBe("/shoes?color=red&size=42#sizes");
    expect(history.length).toBe(before);
  });

  it("sends the share channel the link carries with the click, and removes it from the address bar", async () => {
    land("/shoes?ref=JANE-K7M3&ref_channel=WhatsApp&size=42");
    const calls = answer(TRACKED);
    await captureReferral(CAPTURE);
    expect(calls[0].body.variables.input.channel).toBe("whatsapp");
    expect(calls[0].body.variables.input.landingUrl).toBe("https://shop.example/shoes?ref=JANE-K7M3");
    expect(location.search).toBe("?size=42");
  });

  it("sends no channel when the link has none or a malformed one", async () => {
    land("/?ref=JANE-K7M3");
    let calls = answer(TRACKED);
    await captureReferral(CAPTURE);
    expect(calls[0].body.variables.input).not.toHaveProperty("channel");
    clearBrowserState();
    land("/?ref=JANE-K7M3&ref_channel=%3Cscript%3E");
    calls = answer(TRACKED);
    await captureReferral(CAPTURE);
    expect(calls[0].body.variables.input).not.toHaveProperty("channel");
    expect(location.search).toBe("");
  });

  it("reads a configured parameter name", async () => {
    land("/?invite=JANE-K7M3&ref=other");
    const calls = answer(TRACKED);
    await captureReferral({ ...CAPTURE, refParam: "invite" });
    expect(calls[0].body.variables.input.code).toBe("JANE-K7M3");
    expect(location.search).toBe("?ref=other");
  });

  it("does nothing on a page without the parameter", async () => {
    land("/");
    const calls = answer(TRACKED);
    expect(await captureReferral(CAPTURE)).toBeNull();
    expect(calls).toHaveLength(0);
  });

  it("forgets the attribution when the program's window has passed", async () => {
    land("/?ref=JANE-K7M3");
    answer({ data: { trackClick: { ...TRACKED.data.trackClick, expiresAt: new Date(Date.now() + 50).toISOString() } } });
    expect(await captureReferral(CAPTURE)).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(Referral.getAttribution()).toBeNull();
    expect(localStorage.getItem("referral_attribution")).toBeNull();
  });

  it("reports an unknown code as a referral:error and keeps an earlier valid attribution", async () => {
    land("/?ref=JANE-K7M3");
    answer(TRACKED);
    await captureReferral(CAPTURE);
    land("/?ref=NOPE");
    answer({ data: { trackClick: { attributionToken: null, expiresAt: null, repeated: false, referralCode: null,
      userErrors: [{ field: "code", code: "CODE_NOT_FOUND", message: "no such referral code" }] } } });
    const errors = events("referral:error");
    const attribution = await captureReferral(CAPTURE);
    expect(errors.map((e) => e.detail)).toEqual([
      { operation: "trackClick", code: "CODE_NOT_FOUND", message: "no such referral code" },
    ]);
    expect(attribution).toMatchObject({ code: "JANE-K7M3", attributionToken: "at_token1" });
  });

  it("keeps the code when the API is down: one retry, a warning, an event, no exception", async () => {
    land("/?ref=JANE-K7M3");
    const calls = answer(new TypeError("Failed to fetch"));
    const errors = events("referral:error");
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});

    const attribution = await captureReferral(CAPTURE);

    expect(calls).toHaveLength(2);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(/\[referral\] trackClick: could not reach https:\/\/api.example/);
    expect(errors).toHaveLength(1);
    expect(errors[0].detail.operation).toBe("trackClick");
    // the shop's signup can still pass the code (recordAction referralCode)
    expect(attribution).toMatchObject({ code: "JANE-K7M3", attributionToken: null });
    expect(location.search).toBe("");

    // the next page load reports the kept code
    const later = answer(TRACKED);
    expect(await captureReferral(CAPTURE)).toMatchObject({ attributionToken: "at_token1" });
    expect(later[0].body.variables.input.code).toBe("JANE-K7M3");
  });

  it("retries a server error once and then succeeds", async () => {
    land("/?ref=JANE-K7M3");
    const calls = answer(503, TRACKED);
    const errors = events("referral:error");
    expect(await captureReferral(CAPTURE)).toMatchObject({ attributionToken: "at_token1" });
    expect(calls).toHaveLength(2);
    expect(errors).toHaveLength(0);
  });

  it("does not retry a refusal such as an invalid key", async () => {
    land("/?ref=JANE-K7M3");
    const calls = answer({ errors: [{ message: "a valid API key is required", extensions: { code: "UNAUTHENTICATED" } }] });
    const errors = events("referral:error");
    await captureReferral(CAPTURE);
    expect(calls).toHaveLength(1);
    expect(errors[0].detail).toEqual({ operation: "trackClick", code: "UNAUTHENTICATED", message: "a valid API key is required" });
  });
});

describe("Referral", () => {
  beforeEach(() => {
    clearBrowserState();
    vi.spyOn(console, "warn").mockImplementation(() => {});
  });

  it("init reports the landing and getAttribution hands the signup form token, code and device", async () => {
    land("/?ref=JANE-K7M3");
    answer(TRACKED);
    await Referral.init(CONFIG);
    const attribution = Referral.getAttribution();
    expect(attribution).toMatchObject({ code: "JANE-K7M3", attributionToken: "at_token1" });
    expect(attribution!.deviceId).toMatch(/^d_/);
    expect(attribution!.deviceFingerprint).toMatch(/^fp1_/);
    Referral.clearAttribution();
    expect(Referral.getAttribution()).toBeNull();
    expect(cookies().referral_token).toBeUndefined();
  });

  it("refuses to start without a key, with a warning instead of an exception", async () => {
    const errors = events("referral:error");
    expect(await Referral.init({ publishableKey: "", apiUrl: "" })).toBeNull();
    expect(errors[0].detail.operation).toBe("init");
  });
});
