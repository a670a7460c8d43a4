import { call, type ApiConfig, type UserError } from "./api";
import { palette, type Colors } from "./colors";
import { deviceFingerprint, deviceId } from "./device";
import { emit, report, type ShareChannel } from "./events";
import { fill, list, money, pickLocale, plural, RTL, STRINGS, type Locale, type Strings } from "./i18n";
import { shareLinks, withChannel } from "./share";

export interface MountOptions {
  /** The customer's id in the shop (what the shop's server signed). */
  customerId: string;
  /** Unix seconds when the shop's server signed. */
  timestamp: number;
  /** Hex HMAC-SHA256 of `${customerId}.${timestamp}` with the widget secret. */
  signature: string;
  /** "en", "ar" or "fa" (or a tag such as "ar-EG"); default: the page's language. */
  locale?: string;
  /** Needed only when the shop runs several programs. */
  programId?: string;
}

interface WidgetText {
  locale: string;
  title: string | null;
  description: string | null;
  shareMessage: string | null;
}

interface RewardTotal {
  kind: "CREDIT" | "POINTS" | "COMMISSION" | "DISCOUNT";
  unit: string;
  count: number;
  earned: number;
  pending: number;
}

export interface WidgetSession {
  code: string;
  shareUrl: string | null;
  successfulReferrals: number;
  pendingReferrals: number;
  rewards: RewardTotal[];
  program: { id: string; name: string; texts: WidgetText[]; colors: Colors };
}

const WIDGET_SESSION = `mutation($c: String!, $t: BigInt!, $s: String!, $p: ID, $d: String, $f: String) {
  widgetSession(customerExternalId: $c, timestamp: $t, signature: $s, programId: $p, deviceId: $d, deviceFingerprint: $f) {
    session { code shareUrl successfulReferrals pendingReferrals rewards { kind unit count earned pending }
      program { id name texts { locale title description shareMessage } colors { primary background text } } }
    userErrors { field code message } } }`;

const CSS = `:host{all:initial;display:block}
.r{box-sizing:border-box;max-width:34rem;padding:1rem 1.25rem;border-radius:.75rem;box-shadow:0 0 0 1px rgba(0,0,0,.18);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans Arabic",Tahoma,sans-serif;color:var(--t);background:var(--b)}
h2{font-size:1.2rem;margin:0 0 .25rem}p{margin:0 0 .75rem}
label{display:block;font-weight:600;font-size:.9rem;margin:.75rem 0 .25rem}
.f{display:flex;gap:.5rem}
input{flex:1;min-width:0;font:inherit;padding:.45rem .6rem;border:1px solid var(--t);border-radius:.5rem;color:var(--t);background:var(--b)}
button,a{font:inherit;font-weight:600;padding:.45rem .8rem;border:0;border-radius:.5rem;color:var(--o);background:var(--p);
cursor:pointer;text-decoration:none;display:inline-block}
ul{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0 .75rem;padding:0;list-style:none}
:focus-visible{outline:3px solid var(--t);outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}`;

type Child = Node | string | null | false;

function h(tag: string, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) if (child) element.append(child);
  return element;
}

function textFor(texts: WidgetText[], locale: Locale): Partial<WidgetText> {
  return (
    texts.find((t) => t.locale.toLowerCase() === locale) ??
    texts.find((t) => t.locale.toLowerCase().split("-")[0] === locale) ??
    texts.find((t) => t.locale.toLowerCase().startsWith("en")) ??
    {}
  );
}

/** "Earned: $20.00 store credit, 2 discount coupons and $5.00 on hold", in the locale. */
function rewardsLine(strings: Strings, tag: string, totals: RewardTotal[]): string | null {
  const items: string[] = [];
  for (const total of totals) {
    // an amount is one left-to-right unit (U+2066 ... U+2069): in Arabic "US$" would otherwise split into "$US"
    const amount = (minor: number) =>
      total.kind === "POINTS" ? plural(tag, strings.points, minor) : `\u2066${money(tag, minor, total.unit)}\u2069`;
    if (total.kind === "DISCOUNT") items.push(plural(tag, strings.coupons, total.count));
    else {
      if (total.earned > 0) {
        const template = total.kind === "CREDIT" ? strings.credit : total.kind === "COMMISSION" ? strings.commission : "{amount}";
        items.push(fill(template, { amount: amount(total.earned) }));
      }
      if (total.pending > 0) items.push(fill(strings.held, { amount: amount(total.pending) }));
    }
  }
  return items.length ? fill(strings.earned, { list: list(tag, items) }) : null;
}

async function copy(text: string, field: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    field.select(); // no async clipboard (an insecure page, an old browser): the older way
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}

function frame(host: HTMLElement, [locale, tag]: [Locale, string], colors: Colors, busy: boolean, ...content: Child[]): HTMLElement {
  const shadow = host.shadowRoot ?? host.attachShadow({ mode: "open" });
  const p = palette(colors);
  const root = h("section", {
    class: "r",
    lang: tag,
    dir: RTL.has(locale) ? "rtl" : "ltr",
    "aria-labelledby": "r-title",
    "aria-busy": String(busy),
    style: `--p:${p.primary};--o:${p.onPrimary};--b:${p.background};--t:${p.text}`,
  }, ...content);
  shadow.replaceChildren(h("style", {}, CSS), root);
  return root;
}

export function render(host: HTMLElement, session: WidgetSession, language: [Locale, string]): HTMLElement {
  const [locale, tag] = language;
  const strings = STRINGS[locale];
  const texts = textFor(session.program.texts, locale);
  const title = texts.title || strings.title;
  const message = texts.shareMessage || strings.message;
  const link = session.shareUrl || session.code;
  const status = h("p", { class: "sr", role: "status", "aria-live": "polite" });
  const shared = (channel: ShareChannel) => emit(host, "referral:shared", { channel, code: session.code });

  const field = (id: string, label: string, value: string, copyLabel: string, what: "code" | "link") => {
    const input = h("input", { id, readonly: "", dir: "ltr", value, spellcheck: "false" }) as HTMLInputElement;
    const button = h("button", { type: "button" }, copyLabel);
    button.addEventListener("click", async () => {
      // a copied link is pasted somewhere we cannot see: its channel is "copy"
      if (await copy(what === "link" ? withChannel(value, "copy") : value, input)) {
        status.textContent = "";
        status.textContent = strings.copied;
        emit(host, "referral:copied", { what, code: session.code });
      }
    });
    return [h("label", { for: id }, label), h("div", { class: "f" }, input, button)];
  };

  const shares = shareLinks(message, link, title, strings.email).map(({ channel, name, href }) => {
    const anchor = h("a", {
      href,
      "aria-label": fill(strings.shareVia, { channel: name }),
      ...(channel === "email" ? {} : { target: "_blank", rel: "noopener noreferrer" }),
    }, name);
    anchor.addEventListener("click", () => shared(channel));
    return h("li", {}, anchor);
  });
  if (typeof navigator.share === "function") {
    const more = h("button", { type: "button" }, strings.more);
    more.addEventListener("click", () => {
      navigator.share({ title, text: message, url: withChannel(link, "native") }).then(() => shared("native"), () => {});
    });
    shares.push(h("li", {}, more));
  }

  const counts = [plural(tag, strings.successful, session.successfulReferrals)];
  if (session.pendingReferrals > 0) counts.push(plural(tag, strings.pending, session.pendingReferrals));
  const rewards = rewardsLine(strings, tag, session.rewards);
  return frame(
    host,
    language,
    session.program.colors,
    false,
    h("h2", { id: "r-title" }, title),
    texts.description ? h("p", {}, texts.description) : null,
    ...field("r-code", strings.codeLabel, session.code, strings.copyCode, "code"),
    ...(session.shareUrl ? field("r-link", strings.linkLabel, session.shareUrl, strings.copyLink, "link") : []),
    h("h3", { class: "sr" }, strings.share),
    h("ul", { "aria-label": strings.share }, ...shares),
    h("p", { "data-count": String(session.successfulReferrals) }, counts.join(" · ")),
    rewards && h("p", {}, rewards),
    status,
  );
}

/** Shows the share panel of a signed-in customer inside `host`'s shadow root (the shop's CSS
 * cannot reach in, the panel's cannot leak out). Resolves to false, after a quiet message in
 * the panel and a `referral:error` event, when the panel cannot be shown. */
export async function mount(config: ApiConfig & { cookieDomain?: string }, host: HTMLElement, options: MountOptions): Promise<boolean> {
  const language = pickLocale(options.locale, host.closest("[lang]")?.getAttribute("lang"), document.documentElement.lang, navigator.language);
  const strings = STRINGS[language[0]];
  frame(host, language, {}, true, h("p", { role: "status" }, strings.loading));
  const payload = await call<{ session: WidgetSession | null; userErrors: UserError[] }>(
    config,
    "widgetSession",
    WIDGET_SESSION,
    {
      c: options.customerId,
      t: options.timestamp,
      s: options.signature,
      p: options.programId ?? null,
      d: deviceId(config.cookieDomain),
      f: deviceFingerprint(),
    },
    host,
  );
  if (payload?.session) {
    render(host, payload.session, language);
    return true;
  }
  if (payload?.userErrors.length) report("widgetSession", payload.userErrors[0].message, payload.userErrors[0].code, host);
  frame(host, language, {}, false, h("p", { role: "status" }, strings.unavailable));
  return false;
}
