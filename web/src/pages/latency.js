// pages/latency.js -- #/latency: p50/p95/p99 and error rate over 1 h to
// 30 d or a custom range, for a service (one chart per region), one
// region of it, or one target; drawn with uPlot from GET /api/v1/latency
// (minute rollups up to 24 h, hour rollups beyond). Missing minutes are
// gaps, never joined lines; incidents, failovers and markers are marked
// on the time axis and listed under the charts. The selection and range
// live in the URL; a range ending now refreshes every 30 s.
import uPlot from '../vendor/uPlot.esm.js';
import { h, replace } from '../lib/dom.js';
import { setParams } from '../lib/url.js';
import { fmtTime, fmtDur, fmtPct, onClockChange, clockIsLocal, parseTime } from '../lib/fmt.js';
import { get, poll } from '../lib/api.js';
import { describe } from '../lib/events.js';

const RANGES = [['1h', 36e5], ['6h', 216e5], ['24h', 864e5], ['7d', 6048e5], ['30d', 2592e6]];
const DEFAULT_RANGE = '6h';

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// [from, to, live] in ms for the URL's range/from/to.
function window_(params) {
  const now = Date.now();
  const from = parseTime(params.get('from')), to = parseTime(params.get('to'));
  if (params.get('from') && !Number.isNaN(from)) {
    const end = params.get('to') && !Number.isNaN(to) ? to : now;
    return [from, end, !params.get('to') || /^now/.test(params.get('to'))];
  }
  const span = (RANGES.find(([k]) => k === params.get('range')) || RANGES[1])[1];
  return [now - span, now, true];
}

// Points as uPlot columns (x in s), a null row where a step is missing
// so the line breaks there.
function columns(lat) {
  const step = lat.step_ms, cols = [[], [], [], [], []];
  let prev = null;
  for (const p of lat.points) {
    if (prev !== null && p.t - prev > step * 1.5) {
      cols[0].push((prev + step) / 1000);
      for (let i = 1; i < 5; i++) cols[i].push(null);
    }
    cols[0].push(p.t / 1000);
    cols[1].push(p.p50_ms);
    cols[2].push(p.p95_ms);
    cols[3].push(p.p99_ms);
    cols[4].push(p.count ? (p.failures / p.count) * 100 : null);
    prev = p.t;
  }
  return cols;
}

// A uPlot plugin drawing vertical marks (incidents, failovers) with a
// short label at the top.
function marksPlugin(getMarks) {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        const top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
        ctx.save();
        ctx.font = `${11 * devicePixelRatio}px sans-serif`;
        for (const m of getMarks()) {
          const x = Math.round(u.valToPos(m.ms / 1000, 'x', true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = css(m.colour);
          ctx.fillStyle = css(m.colour);
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.lineWidth = devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, bottom);
          ctx.stroke();
          ctx.fillText(m.short, x + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
        }
        ctx.restore();
      }],
    },
  };
}

// A time axis label, 24-hour, in the page's clock: "14:25", or
// "12-04 14:00" when the range spans days.
function tick(ms, span) {
  const d = new Date(ms), local = clockIsLocal();
  const p2 = (n) => String(n).padStart(2, '0');
  const hm = local ? `${p2(d.getHours())}:${p2(d.getMinutes())}`
    : `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}`;
  if (span <= 2 * 864e5) return hm;
  const md = local ? `${p2(d.getMonth() + 1)}-${p2(d.getDate())}`
    : `${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`;
  return `${md} ${hm}`;
}

function chartOpts(width, getMarks, from, to) {
  const grid = { stroke: css('--line'), width: 1 };
  const axis = { stroke: css('--muted'), grid, ticks: grid };
  return {
    width, height: 240,
    scales: { x: { time: true, min: from / 1000, max: to / 1000 }, pct: { range: [0, 100] } },
    series: [
      { value: (u, v) => (v === null ? '—' : fmtTime(v * 1000, { date: true })) },
      { label: 'p50', scale: 'ms', stroke: css('--series1'), width: 1.5, spanGaps: false,
        value: (u, v) => (v === null ? '—' : `${v.toFixed(1)} ms`) },
      { label: 'p95', scale: 'ms', stroke: css('--series2'), width: 1.5, spanGaps: false,
        value: (u, v) => (v === null ? '—' : `${v.toFixed(1)} ms`) },
      { label: 'p99', scale: 'ms', stroke: css('--series3'), width: 1.5, spanGaps: false,
        value: (u, v) => (v === null ? '—' : `${v.toFixed(1)} ms`) },
      { label: 'errors', scale: 'pct', stroke: css('--bad'), width: 1, dash: [2, 2], spanGaps: false,
        value: (u, v) => (v === null ? '—' : `${v.toFixed(1)} %`) },
    ],
    axes: [
      { ...axis, values: (u, splits) => splits.map((v) => tick(v * 1000, to - from)) },
      { ...axis, scale: 'ms', label: 'ms', size: 55 },
      { ...axis, scale: 'pct', side: 1, label: 'errors %', grid: { show: false }, size: 50 },
    ],
    plugins: [marksPlugin(getMarks)],
  };
}

// The words under a chart: the last step's numbers and the range's
// error rate (the chart's text alternative).
function caption(lat) {
  const pts = lat.points;
  if (!pts.length) return 'No probes in this range.';
  const last = pts[pts.length - 1];
  const n = pts.reduce((a, p) => a + p.count, 0), f = pts.reduce((a, p) => a + p.failures, 0);
  const ms = (v) => (v === null ? '—' : `${v.toFixed(1)} ms`);
  return `Latest ${lat.step_ms === 60000 ? 'minute' : 'hour'} (${fmtTime(last.t)}): ` +
    `p50 ${ms(last.p50_ms)}, p95 ${ms(last.p95_ms)}, p99 ${ms(last.p99_ms)}, ` +
    `${last.failures} of ${last.count} probes failed. Whole range: ${f} of ${n} failed ` +
    `(${fmtPct(n ? f / n : null)}).`;
}

export default {
  title: 'Latency',
  render(main, route) {
    const p = route.params;
    const service = h('select', { id: 'l-service' }, h('option', { value: '' }, '(choose)'));
    const region = h('select', { id: 'l-region' }, h('option', { value: '' }, 'every region'));
    const target = h('select', { id: 'l-target' }, h('option', { value: '' }, '(none: by service)'));
    const from = h('input', { id: 'l-from', size: 22, value: p.get('from') || '', placeholder: 'now-6h or 2026-12-04T14:00Z' });
    const to = h('input', { id: 'l-to', size: 22, value: p.get('to') || '', placeholder: 'now' });
    const rangeBtns = RANGES.map(([k]) => h('button', {
      type: 'button', 'aria-pressed': String(!p.get('from') && (p.get('range') || DEFAULT_RANGE) === k),
      onclick: () => { setParams({ range: k, from: null, to: null }); from.value = ''; to.value = ''; reload(); },
    }, k));
    const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
    const charts = h('div', { class: 'charts' });
    const marksList = h('ul', { class: 'marks' });
    let services = [], plots = [], marks = [], stopPoll = null, ro = null;

    const cur = () => new URLSearchParams(location.hash.split('?')[1] || '');

    const fillSelects = (status_) => {
      // Without service= the charts show the first service: say so.
      const shownSvc = cur().get('target') ? '' : cur().get('service') || (services[0] && services[0].name);
      replace(service, h('option', { value: '' }, '(choose)'),
        services.map((s) => h('option', { value: s.name, selected: s.name === shownSvc }, s.name)));
      const svc = services.find((s) => s.name === service.value);
      replace(region, h('option', { value: '' }, 'every region'),
        (svc ? svc.regions : []).map((r) => h('option', { value: r.name, selected: r.name === cur().get('region') }, r.name)));
      const targets = [...new Set(status_.targets.map((t) => t.target))].sort();
      replace(target, h('option', { value: '' }, '(none: by service)'),
        targets.map((t) => h('option', { value: t, selected: t === cur().get('target') }, t)));
    };

    // [{ title, query }] for the selection.
    const selection = () => {
      const q = cur();
      if (q.get('target')) return [{ title: `target ${q.get('target')}`, query: `target=${encodeURIComponent(q.get('target'))}` }];
      const svc = services.find((s) => s.name === q.get('service')) || services[0];
      if (!svc) return [];
      const regions = q.get('region') ? [q.get('region')] : svc.regions.map((r) => r.name);
      return regions.map((r) => ({ title: `${svc.name} · ${r}`, service: svc.name,
        query: `service=${encodeURIComponent(svc.name)}&region=${encodeURIComponent(r)}` }));
    };

    const drawMarks = () => {
      replace(marksList, marks.length ? marks.map((m) => h('li', {},
        h('time', {}, fmtTime(m.ms, { date: true })), ' ', m.text)) : h('li', { class: 'muted' }, 'No incident or failover in this range.'));
      for (const u of plots) u.redraw(false);
    };

    const load = async () => {
      const [lo, hi] = window_(cur());
      const step = hi - lo > 864e5 + 60000 ? 'hour' : 'minute';
      const sel = selection();
      try {
        const lats = await Promise.all(sel.map((s) => get(`latency?${s.query}&from=${Math.floor(lo)}&to=${Math.ceil(hi)}&step=${step}`)));
        const svcName = sel[0] && sel[0].service;
        const [incs, tl] = await Promise.all([
          get(`incidents?from=${Math.floor(lo)}&to=${Math.ceil(hi)}${svcName ? `&service=${encodeURIComponent(svcName)}` : ''}&limit=100`),
          get(`timeline?kind=failover,marker,annotation&from=${Math.floor(lo)}&to=${Math.ceil(hi)}&limit=200`),
        ]);
        marks = [];
        for (const i of incs.incidents) {
          const t = i.times;
          const start = t.first_failure || t.detected;
          if (start) marks.push({ ms: start.ms, short: `#${i.id}`, colour: '--bad',
            text: `incident #${i.id} ${i.service} ${i.region}: first failure; RTO ${fmtDur(i.durations_ms.rto)}` });
          if (t.restored) marks.push({ ms: t.restored.ms, short: `#${i.id} ok`, colour: '--ok',
            text: `incident #${i.id}: healthy through the global name` });
        }
        for (const ev of tl.events) {
          marks.push({ ms: ev.corrected_ms, short: ev.kind === 'failover' ? 'failover' : (ev.fields && ev.fields.kind) || ev.kind,
            colour: '--warn', text: `${ev.kind} (${ev.cluster ?? 'note'}): ${describe(ev)}` });
        }
        marks.sort((a, b) => a.ms - b.ms);
        for (const u of plots) u.destroy();
        plots = [];
        const width = Math.max(280, charts.clientWidth || main.clientWidth - 20);
        replace(charts, sel.map((s, i) => {
          const fig = h('figure', { class: 'chart' }, h('h2', {}, s.title));
          const cap = h('figcaption', {}, caption(lats[i]));
          const box = h('div', { class: 'plot', role: 'img', 'aria-label': `${s.title}: latency p50, p95, p99 and error rate; the numbers are in the caption below` });
          fig.append(box, cap);
          plots.push(new uPlot(chartOpts(width, () => marks, lo, hi), columns(lats[i]), box));
          return fig;
        }));
        drawMarks();
        status.textContent = `${fmtTime(lo, { date: true })} to ${fmtTime(hi, { date: true })}, one point per ${step}.`;
      } catch (e) {
        status.textContent = `Could not load latency: ${e.message}`;
      }
    };

    const reload = () => {
      for (const b of rangeBtns) b.setAttribute('aria-pressed', String(!cur().get('from') && (cur().get('range') || DEFAULT_RANGE) === b.textContent));
      if (stopPoll) stopPoll();
      stopPoll = null;
      load();
      if (window_(cur())[2]) {
        // The window slides with time: ask again every 30 s.
        const id = setInterval(load, 30000);
        stopPoll = () => clearInterval(id);
      }
    };

    service.addEventListener('change', () => { setParams({ service: service.value, region: null, target: null }); target.value = ''; fillSelectsFromCache(); reload(); });
    region.addEventListener('change', () => { setParams({ region: region.value, target: null }); target.value = ''; reload(); });
    target.addEventListener('change', () => { setParams({ target: target.value }); reload(); });
    let statusCache = { targets: [] };
    const fillSelectsFromCache = () => fillSelects(statusCache);
    const custom = h('form', { class: 'toolbar', onsubmit: (ev) => {
      ev.preventDefault();
      for (const el of [from, to]) el.setCustomValidity(el.value && Number.isNaN(parseTime(el.value)) ? 'a time such as 2026-12-04T14:39Z, now-6h or Unix ms' : '');
      if (!custom.reportValidity()) return;
      setParams({ from: from.value.trim(), to: to.value.trim(), range: null });
      reload();
    } }, h('label', { for: 'l-from' }, 'From'), from, h('label', { for: 'l-to' }, 'to'), to,
    h('button', { type: 'submit' }, 'Show range'));

    main.append(h('h1', {}, 'Latency'),
      h('div', { class: 'toolbar' }, h('label', { for: 'l-service' }, 'Service'), service,
        h('label', { for: 'l-region' }, 'Region'), region, h('label', { for: 'l-target' }, 'or target'), target),
      h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Range' }, 'Range:', rangeBtns), custom,
      status, charts, h('h2', {}, 'Marks'), marksList);

    Promise.all([get('services'), get('status')]).then(([s, st]) => {
      services = s.services;
      statusCache = st;
      fillSelects(st);
      reload();
    }).catch((e) => { status.textContent = `Could not load services: ${e.message}`; });

    ro = new ResizeObserver(() => {
      const w = Math.max(280, charts.clientWidth);
      for (const u of plots) u.setSize({ width: w, height: 240 });
    });
    ro.observe(charts);
    const offClock = onClockChange(() => load());
    return () => { if (stopPoll) stopPoll(); ro.disconnect(); offClock(); for (const u of plots) u.destroy(); };
  },
};
