import type { ShareChannel } from "./events";

export interface ShareLink {
  channel: Exclude<ShareChannel, "native">;
  name: string;
  href: string;
}

/** The parameter a shared link carries its share channel in (`?ref=CODE&ref_channel=whatsapp`):
 * the friend's landing reports it with the click, so the shop's funnel splits by channel. */
export const CHANNEL_PARAM = "ref_channel";

/** The link with its share channel; a bare code (no URL) stays as it is. */
export function withChannel(link: string, channel: string): string {
  try {
    const url = new URL(link);
    url.searchParams.set(CHANNEL_PARAM, channel);
    return url.toString();
  } catch {
    return link;
  }
}

/** Links that open each network's own share screen with the message and the link (marked
 * with that network's channel) filled in. */
export function shareLinks(message: string, link: string, subject: string, emailName: string): ShareLink[] {
  const e = encodeURIComponent;
  const text = (url: string) => `${message} ${url}`.trim();
  const via = (channel: ShareLink["channel"]) => withChannel(link, channel);
  return [
    { channel: "email", name: emailName, href: `mailto:?subject=${e(subject)}&body=${e(text(via("email")))}` },
    { channel: "whatsapp", name: "WhatsApp", href: `https://wa.me/?text=${e(text(via("whatsapp")))}` },
    { channel: "telegram", name: "Telegram", href: `https://t.me/share/url?url=${e(via("telegram"))}&text=${e(message)}` },
    { channel: "x", name: "X", href: `https://x.com/intent/post?text=${e(message)}&url=${e(via("x"))}` },
    { channel: "facebook", name: "Facebook", href: `https://www.facebook.com/sharer/sharer.php?u=${e(via("facebook"))}` },
  ];
}
