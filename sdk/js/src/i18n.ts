/** The panel's own strings in English, Arabic and Persian; numbers and money through `Intl`
 * (Arabic-Indic and Persian digits come from the locale). */

export type Locale = "en" | "ar" | "fa";

/** Plural forms by `Intl.PluralRules` category; `other` is the fallback. */
type Plural = Partial<Record<Intl.LDMLPluralRule, string>> & { other: string };

export interface Strings {
  title: string;
  codeLabel: string;
  linkLabel: string;
  copyCode: string;
  copyLink: string;
  copied: string;
  share: string;
  shareVia: string;
  email: string;
  more: string;
  successful: Plural;
  pending: Plural;
  earned: string;
  held: string;
  coupons: Plural;
  points: Plural;
  credit: string;
  commission: string;
  message: string;
  loading: string;
  unavailable: string;
}

export const STRINGS: Record<Locale, Strings> = {
  en: {
    title: "Invite your friends",
    codeLabel: "Your referral code",
    linkLabel: "Your referral link",
    copyCode: "Copy code",
    copyLink: "Copy link",
    copied: "Copied",
    share: "Share your link",
    shareVia: "Share via {channel}",
    email: "Email",
    more: "More…",
    successful: { one: "{n} successful referral", other: "{n} successful referrals" },
    pending: { other: "{n} pending" },
    earned: "Earned: {list}",
    held: "{amount} on hold",
    coupons: { one: "{n} discount coupon", other: "{n} discount coupons" },
    points: { one: "{n} point", other: "{n} points" },
    credit: "{amount} store credit",
    commission: "{amount} commission",
    message: "Here is my link for you:",
    loading: "Loading your referral link…",
    unavailable: "Your referral link is not available right now.",
  },
  ar: {
    title: "ادعُ أصدقاءك",
    codeLabel: "رمز الإحالة الخاص بك",
    linkLabel: "رابط الإحالة الخاص بك",
    copyCode: "نسخ الرمز",
    copyLink: "نسخ الرابط",
    copied: "تم النسخ",
    share: "شارك رابطك",
    shareVia: "المشاركة عبر {channel}",
    email: "البريد الإلكتروني",
    more: "المزيد…",
    successful: {
      zero: "لا توجد إحالات ناجحة",
      one: "إحالة ناجحة واحدة",
      two: "إحالتان ناجحتان",
      few: "{n} إحالات ناجحة",
      many: "{n} إحالة ناجحة",
      other: "{n} إحالة ناجحة",
    },
    pending: { other: "{n} قيد الانتظار" },
    earned: "المكافآت: {list}",
    held: "{amount} معلّقة",
    coupons: { one: "قسيمة خصم واحدة", two: "قسيمتا خصم", few: "{n} قسائم خصم", other: "{n} قسيمة خصم" },
    points: { one: "نقطة واحدة", two: "نقطتان", few: "{n} نقاط", other: "{n} نقطة" },
    credit: "رصيد متجر بقيمة {amount}",
    commission: "عمولة بقيمة {amount}",
    message: "إليك رابطي:",
    loading: "جارٍ تحميل رابط الإحالة…",
    unavailable: "رابط الإحالة غير متاح حاليًا.",
  },
  fa: {
    title: "دوستانتان را دعوت کنید",
    codeLabel: "کد معرفی شما",
    linkLabel: "لینک معرفی شما",
    copyCode: "کپی کد",
    copyLink: "کپی لینک",
    copied: "کپی شد",
    share: "لینک خود را به اشتراک بگذارید",
    shareVia: "اشتراک‌گذاری از طریق {channel}",
    email: "ایمیل",
    more: "بیشتر…",
    successful: { other: "{n} معرفی موفق" },
    pending: { other: "{n} در انتظار" },
    earned: "پاداش‌ها: {list}",
    held: "{amount} در انتظار تأیید",
    coupons: { other: "{n} کوپن تخفیف" },
    points: { other: "{n} امتیاز" },
    credit: "{amount} اعتبار فروشگاه",
    commission: "{amount} پورسانت",
    message: "این لینک من برای شماست:",
    loading: "در حال بارگذاری لینک معرفی…",
    unavailable: "لینک معرفی شما در حال حاضر در دسترس نیست.",
  },
};

export const RTL: ReadonlySet<Locale> = new Set<Locale>(["ar", "fa"]);

/** The first supported language of `wanted` (BCP 47 tags) and the full tag it came from, for
 * `Intl`: "ar-EG" shows Arabic strings with Egyptian number formats (Arabic-Indic digits),
 * plain "ar" whatever the browser's data says for Arabic. Unsupported: English. */
export function pickLocale(...wanted: (string | null | undefined)[]): [Locale, string] {
  for (const tag of wanted) {
    const language = (tag || "").toLowerCase().split(/[-_]/)[0];
    if (language in STRINGS) {
      try {
        return [language as Locale, Intl.getCanonicalLocales(tag!.replace(/_/g, "-"))[0]];
      } catch {
        return [language as Locale, language];
      }
    }
  }
  return ["en", "en"];
}

export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? "");
}

export function plural(tag: string, forms: Plural, n: number): string {
  const category = new Intl.PluralRules(tag).select(n);
  return fill(forms[category] ?? forms.other, { n: new Intl.NumberFormat(tag).format(n) });
}

/** Minor units (cents) as the locale writes money: 2000 USD is "$20.00", "‏٢٠٫٠٠ US$" in ar-EG. */
export function money(tag: string, minor: number, currency: string): string {
  try {
    const format = new Intl.NumberFormat(tag, { style: "currency", currency });
    const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
    return format.format(minor / 10 ** digits);
  } catch {
    return `${new Intl.NumberFormat(tag).format(minor)} ${currency}`; // not an ISO 4217 code
  }
}

export function list(tag: string, items: string[]): string {
  try {
    return new Intl.ListFormat(tag, { type: "conjunction" }).format(items);
  } catch {
    return items.join(", ");
  }
}
