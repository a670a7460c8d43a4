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
export declare function contrast(a: string, b: string): number;
export declare function palette(colors?: Colors): Palette;
