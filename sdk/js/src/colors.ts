/** The program's colours, kept readable: text that would fall below WCAG AA contrast (4.5:1)
 * against its background is replaced by black or white, whichever reads better. */

export interface Colors {
  primary?: string | null;
  background?: string | null;
  text?: string | null;
}

export interface Palette {
  primary: string;
  onPrimary: string;
  background: string;
  text: string;
}

const DEFAULTS = { primary: "#1a56db", background: "#ffffff", text: "#1f2328" };

function channels(hex: string): number[] {
  const h = hex.length === 4 ? hex.replace(/[0-9a-f]/gi, "$&$&").slice(1) : hex.slice(1);
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16) / 255);
}

function luminance(hex: string): number {
  const [r, g, b] = channels(hex).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

function readableOn(background: string): string {
  return contrast("#000000", background) >= contrast("#ffffff", background) ? "#000000" : "#ffffff";
}

const valid = (value: string | null | undefined): value is string => !!value && /^#([0-9a-f]{3}){1,2}$/i.test(value);

export function palette(colors: Colors = {}): Palette {
  const primary = valid(colors.primary) ? colors.primary : DEFAULTS.primary;
  const background = valid(colors.background) ? colors.background : DEFAULTS.background;
  let text = valid(colors.text) ? colors.text : DEFAULTS.text;
  if (contrast(text, background) < 4.5) text = readableOn(background);
  return { primary, onPrimary: readableOn(primary), background, text };
}
