/** The DOM events the widget sends, for the shop's analytics. All bubble to `document` and
 * `window`; the panel's events are sent from the panel's element. */
export interface ReferralEventMap {
  "referral:click-tracked": { code: string; attributionToken: string; expiresAt: string; repeated: boolean };
  "referral:shared": { channel: ShareChannel; code: string };
  "referral:copied": { what: "code" | "link"; code: string };
  "referral:error": { operation: string; code?: string; message: string };
  "referral:ready": Record<string, never>;
}

export type ShareChannel = "email" | "whatsapp" | "telegram" | "x" | "facebook" | "native";

export function emit<K extends keyof ReferralEventMap>(
  target: EventTarget,
  type: K,
  detail: ReferralEventMap[K],
): void {
  target.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
}

/** A problem for the shop's developers: a console warning and a `referral:error` event; never
 * an exception into the host page. */
export function report(operation: string, message: string, code?: string, target: EventTarget = document): void {
  console.warn(`[referral] ${operation}: ${message}`);
  emit(target, "referral:error", code ? { operation, code, message } : { operation, message });
}
