/** The panel's own strings in English, Arabic and Persian; numbers and money through `Intl`
 * (Arabic-Indic and Persian digits come from the locale). */
export type Locale = "en" | "ar" | "fa";
/** Plural forms by `Intl.PluralRules` category; `other` is the fallback. */
type Plural = Partial<Record<Intl.LDMLPluralRule, string>> & {
    other: string;
};
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
export declare const STRINGS: Record<Locale, Strings>;
export declare const RTL: ReadonlySet<Locale>;
/** The first supported language of `wanted` (BCP 47 tags) and the full tag it came from, for
 * `Intl`: "ar-EG" shows Arabic strings with Egyptian number formats (Arabic-Indic digits),
 * plain "ar" whatever the browser's data says for Arabic. Unsupported: English. */
export declare function pickLocale(...wanted: (string | null | undefined)[]): [Locale, string];
export declare function fill(template: string, values: Record<string, string>): string;
export declare function plural(tag: string, forms: Plural, n: number): string;
/** Minor units (cents) as the locale writes money: 2000 USD is "$20.00", "‏٢٠٫٠٠ US$" in ar-EG. */
export declare function money(tag: string, minor: number, currency: string): string;
export declare function list(tag: string, items: string[]): string;
export {};
