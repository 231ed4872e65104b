// The learning chart, as hand-written SVG (no chart dependency): two panels against KL to the base policy
// (nats per response, x): left the labeler's win rate against the base with its 95% interval, right the mean
// hidden score. One line per simulation (preference), points in policy-version order, the base at KL 0.

export interface ChartPoint {
  version: number;
  kl: number | null;
  winRate: number;
  ciLow: number;
  ciHigh: number;
  hiddenScore: number;
}

export interface ChartSeries {
  label: string;
  /** Base model (version 1): KL 0, win rate 0.5 by definition. */
  baseHiddenScore: number;
  points: ChartPoint[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f = (x: number) => (Math.round(x * 10) / 10).toString();

function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function ticks(lo: number, hi: number, n = 5): number[] {
  const step = (hi - lo) / n;
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
}

export function renderChart(series: ChartSeries[], title: string): string {
  const W = 920, H = 400, panelW = 380, panelH = 270, top = 60, lefts = [70, 530];
  const kls = series.flatMap((s) => s.points.map((p) => p.kl ?? 0));
  const xMax = niceMax(Math.max(1, ...kls) * 1.05);
  const scores = series.flatMap((s) => [s.baseHiddenScore, ...s.points.map((p) => p.hiddenScore)]).filter(Number.isFinite);
  let yLo = Math.min(0, ...scores);
  let yHi = Math.max(...scores, yLo + 0.1);
  const pad = (yHi - yLo) * 0.1;
  yLo -= pad;
  yHi += pad;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);

  const panel = (k: 0 | 1, yTitle: string, yMin: number, yMax: number, yFmt: (v: number) => string) => {
    const x0 = lefts[k];
    const X = (v: number) => x0 + (v / xMax) * panelW;
    const Y = (v: number) => top + panelH - ((v - yMin) / (yMax - yMin)) * panelH;
    out.push(`<rect x="${x0}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#888"/>`);
    for (const t of ticks(0, xMax)) {
      out.push(`<line x1="${f(X(t))}" y1="${top + panelH}" x2="${f(X(t))}" y2="${top + panelH + 5}" stroke="#888"/>`);
      out.push(`<text x="${f(X(t))}" y="${top + panelH + 18}" text-anchor="middle">${+t.toFixed(2)}</text>`);
    }
    for (const t of ticks(yMin, yMax)) {
      out.push(`<line x1="${x0 - 5}" y1="${f(Y(t))}" x2="${x0 + panelW}" y2="${f(Y(t))}" stroke="#eee"/>`);
      out.push(`<text x="${x0 - 8}" y="${f(Y(t) + 4)}" text-anchor="end">${yFmt(t)}</text>`);
    }
    out.push(`<text x="${x0 + panelW / 2}" y="${top + panelH + 38}" text-anchor="middle">KL to base (nats per response)</text>`);
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 10}" text-anchor="middle" font-weight="bold">${esc(yTitle)}</text>`);
    return { X, Y };
  };

  // Left: win rate with its interval, the 0.5 line (no better than base) and the 0.75 target.
  const L = panel(0, 'labeler win rate vs base (95% Wilson)', 0, 1, (v) => v.toFixed(1));
  out.push(`<line x1="${lefts[0]}" y1="${f(L.Y(0.5))}" x2="${lefts[0] + panelW}" y2="${f(L.Y(0.5))}" stroke="#444" stroke-dasharray="4 3"/>`);
  out.push(`<line x1="${lefts[0]}" y1="${f(L.Y(0.75))}" x2="${lefts[0] + panelW}" y2="${f(L.Y(0.75))}" stroke="#2a2" stroke-dasharray="2 3"/>`);
  out.push(`<text x="${lefts[0] + panelW - 4}" y="${f(L.Y(0.75) - 4)}" text-anchor="end" fill="#2a2">target 0.75</text>`);
  const R = panel(1, 'mean hidden score (labeler)', yLo, yHi, (v) => v.toFixed(2));

  series.forEach((s, k) => {
    const c = COLORS[k % COLORS.length];
    const pts = [{ kl: 0, winRate: 0.5, ciLow: 0.5, ciHigh: 0.5, hiddenScore: s.baseHiddenScore, version: 1 }, ...s.points.map((p) => ({ ...p, kl: p.kl ?? 0 }))];
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${f(L.X(p.kl))},${f(L.Y(p.winRate))}`).join(' ')}"/>`);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${f(R.X(p.kl))},${f(R.Y(p.hiddenScore))}`).join(' ')}"/>`);
    for (const p of pts) {
      out.push(`<line x1="${f(L.X(p.kl))}" y1="${f(L.Y(p.ciLow))}" x2="${f(L.X(p.kl))}" y2="${f(L.Y(p.ciHigh))}" stroke="${c}" stroke-width="1.5"/>`);
      out.push(`<circle cx="${f(L.X(p.kl))}" cy="${f(L.Y(p.winRate))}" r="3.5" fill="${c}"><title>v${p.version}: win rate ${p.winRate.toFixed(3)} [${p.ciLow.toFixed(3)}, ${p.ciHigh.toFixed(3)}], KL ${p.kl.toFixed(2)}</title></circle>`);
      out.push(`<circle cx="${f(R.X(p.kl))}" cy="${f(R.Y(p.hiddenScore))}" r="3.5" fill="${c}"><title>v${p.version}: hidden score ${p.hiddenScore.toFixed(3)}, KL ${p.kl.toFixed(2)}</title></circle>`);
      if (p.version > 1) out.push(`<text x="${f(L.X(p.kl) + 5)}" y="${f(L.Y(p.winRate) - 6)}" fill="${c}" font-size="10">v${p.version}</text>`);
    }
    out.push(`<rect x="${lefts[0] + 10 + k * 200}" y="${H - 26}" width="12" height="12" fill="${c}"/>`);
    out.push(`<text x="${lefts[0] + 28 + k * 200}" y="${H - 16}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
