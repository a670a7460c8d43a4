import type { ShareChannel } from "./events";

export interface ShareLink {
  channel: Exclude<ShareChannel, "native">;
  name: string;
  href: string;
}

/** Links that open each network's own share screen with the message and the link filled in. */
export function shareLinks(message: string, url: string, subject: string, emailName: string): ShareLink[] {
  const e = encodeURIComponent;
  const text = `${message} ${url}`.trim();
  return [
    { channel: "email", name: emailName, href: `mailto:?subject=${e(subject)}&body=${e(text)}` },
    { channel: "whatsapp", name: "WhatsApp", href: `https://wa.me/?text=${e(text)}` },
    { channel: "telegram", name: "Telegram", href: `https://t.me/share/url?url=${e(url)}&text=${e(message)}` },
    { channel: "x", name: "X", href: `https://x.com/intent/post?text=${e(message)}&url=${e(url)}` },
    { channel: "facebook", name: "Facebook", href: `https://www.facebook.com/sharer/sharer.php?u=${e(url)}` },
  ];
}
