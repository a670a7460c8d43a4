import { describe, expect, it } from "vitest";
import { money, pickLocale, plural, STRINGS } from "../../src/i18n";
import { contrast, palette } from "../../src/colors";
import { shareLinks } from "../../src/share";

describe("locales", () => {
  it("picks the first supported language of the tags given", () => {
    expect(pickLocale(undefined, "ar-EG", "en")).toEqual(["ar", "ar-EG"]);
    expect(pickLocale("fa_IR")).toEqual(["fa", "fa-IR"]);
    expect(pickLocale("de-DE", "")).toEqual(["en", "en"]);
  });

  it("ships every string in English, Arabic and Persian", () => {
    const keys = Object.keys(STRINGS.en).sort();
    expect(Object.keys(STRINGS.ar).sort()).toEqual(keys);
    expect(Object.keys(STRINGS.fa).sort()).toEqual(keys);
  });

  it("uses each language's plural forms and digits", () => {
    const forms = STRINGS.ar.successful;
    expect(plural("ar", forms, 0)).toBe("لا توجد إحالات ناجحة");
    expect(plural("ar", forms, 1)).toBe("إحالة ناجحة واحدة");
    expect(plural("ar", forms, 2)).toBe("إحالتان ناجحتان");
    expect(plural("ar-EG", forms, 3)).toBe("٣ إحالات ناجحة");
    expect(plural("ar-EG", forms, 11)).toBe("١١ إحالة ناجحة");
    expect(plural("ar", forms, 3)).toBe(`${new Intl.NumberFormat("ar").format(3)} إحالات ناجحة`); // whatever Intl says
    expect(plural("fa", STRINGS.fa.successful, 12)).toBe("۱۲ معرفی موفق");
    expect(plural("en", STRINGS.en.successful, 1)).toBe("1 successful referral");
    expect(plural("en", STRINGS.en.successful, 1200)).toBe("1,200 successful referrals");
  });

  it("writes minor units as the currency's own decimals", () => {
    expect(money("en", 2000, "USD")).toBe("$20.00");
    expect(money("en", 500, "JPY")).toBe("¥500");
    expect(money("en", 1234, "KWD")).toMatch(/^KWD\s1\.234$/);
    expect(money("ar-EG", 2000, "USD")).toMatch(/٢٠٫٠٠/);
    expect(money("fa", 2000, "EUR")).toMatch(/۲۰٫۰۰/);
    expect(money("en", 2000, "POINTS")).toBe("2,000 POINTS");
  });
});

describe("colours", () => {
  it("keep the program's colours and pick button text with enough contrast", () => {
    for (const primary of ["#0b6e4f", "#ffd400", "#777777", "#000", "#fff"]) {
      const p = palette({ primary });
      expect(p.primary).toBe(primary);
      expect(contrast(p.onPrimary, p.primary)).toBeGreaterThanOrEqual(4.5);
    }
  });

  it("replace unreadable text by black or white", () => {
    const p = palette({ background: "#101010", text: "#202020" });
    expect(p.text).toBe("#ffffff");
    expect(palette({ background: "#ffffff", text: "#334455" }).text).toBe("#334455");
    expect(palette({ primary: "red" }).primary).toBe("#1a56db"); // not a colour: the default
  });
});

describe("share links", () => {
  it("open each network's share screen with the message and the link", () => {
    const links = Object.fromEntries(
      shareLinks("Get 10% off & more", "https://shop.example/?ref=JANE-K7M3", "Invite", "Email").map((l) => [l.channel, l.href]),
    );
    // each link names its channel (ref_channel), which the friend's landing reports with the click
    const link = (channel: string) => encodeURIComponent(`https://shop.example/?ref=JANE-K7M3&ref_channel=${channel}`);
    expect(links.email).toBe(`mailto:?subject=Invite&body=Get%2010%25%20off%20%26%20more%20${link("email")}`);
    expect(links.whatsapp).toBe(`https://wa.me/?text=Get%2010%25%20off%20%26%20more%20${link("whatsapp")}`);
    expect(links.telegram).toBe(`https://t.me/share/url?url=${link("telegram")}&text=Get%2010%25%20off%20%26%20more`);
    expect(links.x).toBe(`https://x.com/intent/post?text=Get%2010%25%20off%20%26%20more&url=${link("x")}`);
    expect(links.facebook).toBe(`https://www.facebook.com/sharer/sharer.php?u=${link("facebook")}`);
  });

  it("leave a bare code (no shop URL) as it is", () => {
    const [email] = shareLinks("Use my code", "JANE-K7M3", "Invite", "Email");
    expect(email.href).toBe("mailto:?subject=Invite&body=Use%20my%20code%20JANE-K7M3");
  });
});
