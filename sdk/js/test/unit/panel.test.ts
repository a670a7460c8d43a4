import { beforeEach, describe, expect, it, vi } from "vitest";
import { Referral } from "../../src/index";
import { answer, clearBrowserState, CONFIG, events } from "./helpers";

const SESSION = {
  code: "JANE-K7M3",
  shareUrl: "https://shop.example/?ref=JANE-K7M3",
  successfulReferrals: 3,
  pendingReferrals: 1,
  rewards: [
    { kind: "CREDIT", unit: "USD", count: 3, earned: 2000, pending: 1000 },
    { kind: "DISCOUNT", unit: "PERCENT", count: 2, earned: 3000, pending: 0 },
  ],
  program: {
    id: "p1",
    name: "Friends",
    texts: [{ locale: "en", title: "Give $10, get $10", description: "Your friends get $10 off.", shareMessage: "Get $10 off:" }],
    colors: { primary: "#0b6e4f", background: null, text: null },
  },
};
const SIGNED = { customerId: "jane", timestamp: 1_790_000_000, signature: "ab".repeat(32) };

function panel(host: HTMLElement): ShadowRoot {
  return host.shadowRoot!;
}

describe("the share panel", () => {
  let host: HTMLElement;

  beforeEach(async () => {
    clearBrowserState();
    vi.spyOn(console, "warn").mockImplementation(() => {});
    document.body.innerHTML = '<main><h1>Shop</h1><div id="referral"></div></main>';
    host = document.getElementById("referral")!;
    answer({ data: { trackClick: null } });
    await Referral.init({ ...CONFIG, autoTrack: false });
  });

  it("asks for the signed customer's session with the device, and renders it in a shadow root", async () => {
    const calls = answer({ data: { widgetSession: { session: SESSION, userErrors: [] } } });
    expect(await Referral.mount(host, { ...SIGNED, locale: "en" })).toBe(true);

    const variables = calls[0].body.variables;
    expect(variables).toMatchObject({ c: "jane", t: 1_790_000_000, s: SIGNED.signature, p: null });
    expect(variables.d).toMatch(/^d_/);
    expect(variables.f).toMatch(/^fp1_/);
    expect(host.children).toHaveLength(0); // nothing in the shop's own DOM
    const root = panel(host);
    const section = root.querySelector("section")!;
    expect(section.getAttribute("dir")).toBe("ltr");
    expect(section.getAttribute("aria-labelledby")).toBe("r-title");
    expect(root.querySelector("h2")!.textContent).toBe("Give $10, get $10");
    expect(root.querySelector<HTMLInputElement>("#r-code")!.value).toBe("JANE-K7M3");
    expect(root.querySelector<HTMLInputElement>("#r-link")!.value).toBe(SESSION.shareUrl);
    expect(root.querySelector('label[for="r-code"]')!.textContent).toBe("Your referral code");
    expect(section.textContent).toContain("3 successful referrals · 1 pending");
    expect(section.textContent).toContain("Earned: \u2066$20.00\u2069 store credit, \u2066$10.00\u2069 on hold, and 2 discount coupons");
    const shares = [...root.querySelectorAll("ul a")].map((a) => a.getAttribute("aria-label"));
    expect(shares).toEqual(["Share via Email", "Share via WhatsApp", "Share via Telegram", "Share via X", "Share via Facebook"]);
    // each button's link names its channel, which the friend's landing reports with the click
    expect(root.querySelector('ul a[aria-label="Share via WhatsApp"]')!.getAttribute("href")).toContain(
      encodeURIComponent("Get $10 off: https://shop.example/?ref=JANE-K7M3&ref_channel=whatsapp"),
    );
    expect(root.querySelector('ul a[aria-label="Share via Email"]')!.getAttribute("href")).toContain(
      encodeURIComponent("https://shop.example/?ref=JANE-K7M3&ref_channel=email"),
    );
    expect(root.querySelector('ul a[aria-label="Share via X"]')!.getAttribute("href")).toContain(
      `url=${encodeURIComponent("https://shop.example/?ref=JANE-K7M3&ref_channel=x")}`,
    );
    expect(section.getAttribute("style")).toContain("--p:#0b6e4f");
  });

  it("copies the code and the link, announces it, and tells the shop", async () => {
    answer({ data: { widgetSession: { session: SESSION, userErrors: [] } } });
    await Referral.mount(host, SIGNED);
    const writeText = vi.fn().mockResolvedValue(undefined);
    vi.spyOn(navigator, "clipboard", "get").mockReturnValue({ writeText } as unknown as Clipboard);
    const copied = events("referral:copied");
    const buttons = panel(host).querySelectorAll("button");
    buttons[0].click();
    buttons[1].click();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(writeText.mock.calls).toEqual([["JANE-K7M3"], [`${SESSION.shareUrl}&ref_channel=copy`]]);
    expect(copied.map((e) => e.detail)).toEqual([{ what: "code", code: "JANE-K7M3" }, { what: "link", code: "JANE-K7M3" }]);
    expect(panel(host).querySelector('[role="status"]')!.textContent).toBe("Copied");
  });

  it("tells the shop which network a link was shared to", async () => {
    answer({ data: { widgetSession: { session: SESSION, userErrors: [] } } });
    await Referral.mount(host, SIGNED);
    const shared = events("referral:shared");
    const telegram = panel(host).querySelector<HTMLAnchorElement>('a[aria-label="Share via Telegram"]')!;
    telegram.addEventListener("click", (event) => event.preventDefault());
    telegram.click();
    expect(shared.map((e) => e.detail)).toEqual([{ channel: "telegram", code: "JANE-K7M3" }]);
  });

  it("lays Arabic and Persian out right to left with their strings", async () => {
    for (const [locale, copyCode] of [["ar", "نسخ الرمز"], ["fa", "کپی کد"]]) {
      answer({ data: { widgetSession: { session: { ...SESSION, program: { ...SESSION.program, texts: [] } }, userErrors: [] } } });
      await Referral.mount(host, { ...SIGNED, locale });
      const section = panel(host).querySelector("section")!;
      expect(section.getAttribute("dir")).toBe("rtl");
      expect(section.getAttribute("lang")).toBe(locale);
      expect(panel(host).querySelector("button")!.textContent).toBe(copyCode);
      expect(panel(host).querySelector<HTMLInputElement>("#r-code")!.getAttribute("dir")).toBe("ltr");
    }
    expect(panel(host).querySelector("section")!.textContent).toContain("۳ معرفی موفق");
  });

  it("follows the page's language when the shop names none", async () => {
    document.documentElement.lang = "fa-IR";
    answer({ data: { widgetSession: { session: SESSION, userErrors: [] } } });
    await Referral.mount(host, SIGNED);
    expect(panel(host).querySelector("section")!.getAttribute("lang")).toBe("fa-IR");
    document.documentElement.lang = "";
  });

  it("shows a quiet message and reports a refused signature", async () => {
    answer({ data: { widgetSession: { session: null, userErrors: [
      { field: "signature", code: "SIGNATURE_INVALID", message: "the signature does not match" }] } } });
    const errors = events("referral:error");
    expect(await Referral.mount(host, SIGNED)).toBe(false);
    expect(errors.map((e) => e.detail)).toEqual([
      { operation: "widgetSession", code: "SIGNATURE_INVALID", message: "the signature does not match" },
    ]);
    expect(panel(host).querySelector('[role="status"]')!.textContent).toBe("Your referral link is not available right now.");
    expect(panel(host).querySelector("input")).toBeNull();
  });

  it("survives the API being down", async () => {
    const calls = answer(new TypeError("Failed to fetch"));
    const errors = events("referral:error");
    expect(await Referral.mount(host, SIGNED)).toBe(false);
    expect(calls).toHaveLength(2);
    expect(errors).toHaveLength(1);
  });

  it("is refused before init, without throwing", async () => {
    vi.resetModules();
    const { Referral: fresh } = await import("../../src/index");
    const errors = events("referral:error");
    expect(await fresh.mount(host, SIGNED)).toBe(false);
    expect(errors[0].detail.operation).toBe("mount");
  });
});
