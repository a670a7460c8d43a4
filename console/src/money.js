// Amounts arrive as integers in the currency's minor units (ISO 4217 exponent: JPY 0, USD 2,
// KWD 3); charts and labels need the major unit.
export const minorDigits = (currency) =>
  new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
export const major = (amount, currency) => amount / 10 ** minorDigits(currency);
