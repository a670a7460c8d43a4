import { Referral } from "./index";
declare global {
    interface Window {
        Referral: typeof Referral;
    }
}
