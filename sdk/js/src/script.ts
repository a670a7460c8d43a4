/**
 * The script-tag build:
 *   <script src="https://api.example/sdk/v1/referral.js" data-publishable-key="pk_..." async></script>
 * configures itself from the tag's data attributes (API address: where the script came from,
 * or data-api-url), exposes `window.Referral`, and mounts a share panel into every element with
 * data-referral-panel, data-customer-id, data-timestamp and data-signature.
 */
import { emit } from "./events";
import { Referral } from "./index";

declare global {
  interface Window {
    Referral: typeof Referral;
  }
}

const script = document.currentScript as HTMLScriptElement | null;
const data = script?.dataset ?? {};
window.Referral = Referral;

if (data.publishableKey) {
  Referral.init({
    publishableKey: data.publishableKey,
    apiUrl: data.apiUrl || new URL(script!.src, location.href).origin,
    refParam: data.refParam || "ref",
    autoTrack: data.autoTrack !== "false",
    cookieDomain: data.cookieDomain,
  });
  const mountPanels = () => {
    document.querySelectorAll<HTMLElement>("[data-referral-panel]").forEach((element) => {
      const d = element.dataset;
      if (d.customerId && d.signature) {
        Referral.mount(element, {
          customerId: d.customerId,
          timestamp: Number(d.timestamp),
          signature: d.signature,
          locale: d.locale,
          programId: d.programId,
        });
      }
    });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountPanels);
  else mountPanels();
}
emit(document, "referral:ready", {});
