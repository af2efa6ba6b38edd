// spark.js -- a sparkline of latency p50 and p95 per minute on a small
// canvas, with a red tick under each minute that had failed probes. A
// plain canvas, not uPlot: the overview draws one per service and
// region (30 and more), and a uPlot instance builds its own DOM (axes,
// legend, cursor layers) for each; see the measurement in the README's
// "Dashboard" section. Colours come from style.css's variables, so dark
// mode follows; the words next to it (p95, uptime) carry the meaning,
// the line only its shape.

// Draws @series ({ step_ms, points: [{ t, failures, p50_ms, p95_ms }] }
// as GET /api/v1/latency answers) into @canvas over [@from, @to) ms. A
// minute without probes, or whose latency is null, is a gap in the line.
export function sparkline(canvas, series, from, to) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 96, cssH = canvas.clientHeight || 24;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const pts = (series && series.points) || [];
  if (!pts.length || to <= from) return;
  const css = getComputedStyle(canvas);
  const tickH = 3;                              // room for failure ticks
  const plotH = cssH - tickH - 1;
  let max = 0;
  for (const p of pts) max = Math.max(max, p.p95_ms ?? 0, p.p50_ms ?? 0);
  if (max <= 0) max = 1;
  const x = (t) => ((t - from) / (to - from)) * (cssW - 1) + 0.5;
  const y = (v) => 1 + plotH - (v / max) * plotH;
  const step = series.step_ms || 60000;

  const line = (key, colour, width) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.beginPath();
    let prev = null;
    for (const p of pts) {
      const v = p[key];
      if (v === null || v === undefined || p.t < from) { prev = null; continue; }
      const joined = prev !== null && p.t - prev <= step;
      if (joined) ctx.lineTo(x(p.t), y(v));
      else {
        ctx.moveTo(x(p.t), y(v));
        ctx.lineTo(x(p.t) + 1, y(v));           // a lone minute is a dot
      }
      prev = p.t;
    }
    ctx.stroke();
  };
  line('p50_ms', css.getPropertyValue('--muted').trim() || '#5b6470', 1);
  line('p95_ms', css.getPropertyValue('--fg').trim() || '#1b1f24', 1.5);

  ctx.fillStyle = css.getPropertyValue('--bad').trim() || '#b3261e';
  const w = Math.max(1, ((step / (to - from)) * cssW));
  for (const p of pts) {
    if (p.failures > 0 && p.t >= from) ctx.fillRect(x(p.t) - 0.5, cssH - tickH, w, tickH);
  }
}

// Words for a screen reader and the tooltip: what the line shows.
export function sparkLabel(series, hours) {
  const pts = ((series && series.points) || []).filter((p) => p.p95_ms !== null);
  if (!pts.length) return `no probes in the last ${hours} h`;
  const p95 = pts.map((p) => p.p95_ms);
  const bad = ((series && series.points) || []).filter((p) => p.failures > 0).length;
  return `p50 and p95 per minute, last ${hours} h: p95 between ` +
    `${Math.min(...p95).toFixed(1)} and ${Math.max(...p95).toFixed(1)} ms` +
    (bad ? `; ${bad} minute${bad === 1 ? '' : 's'} with failed probes` : '');
}
