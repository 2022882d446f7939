// WCAG 2 contrast of colours, for the branding editor's live feedback:
// the registry refuses foreground on background below 4.5:1 and white
// text on primary below 4.5:1, and says so; this tells the operator
// before they save.

// "#rgb" or "#rrggbb" (any case) as "#rrggbb", or null.
export function normalise(c) {
  const s = String(c || '').trim().toLowerCase();
  if (/^#[0-9a-f]{6}$/.test(s)) return s;
  if (/^#[0-9a-f]{3}$/.test(s)) return '#' + [...s.slice(1)].map((x) => x + x).join('');
  return null;
}

// Relative luminance of "#rrggbb".
export function luminance(hex) {
  const ch = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
}

// The contrast ratio of two "#rrggbb", 1..21.
export function ratio(a, b) {
  const la = luminance(a), lb = luminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

export const MIN_RATIO = 4.5;
