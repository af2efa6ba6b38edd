// pages/timeline.js -- #/timeline: every cluster's events on one time
// axis, a swimlane per cluster grouped by region, agent or corrected
// time. State changes, DNS changes, failovers, markers, gaps and drops
// stand out; probes are drawn as a thin strip (red where one failed).
// Filters (service, kinds, text), the range and the clock are in the URL.
// Drag on the lanes to zoom; buttons and keys (+, -, arrows, 0) do the
// same from the keyboard. Under the lanes, the events as a list that
// renders only the rows in view, so 100k events scroll freely; Enter or
// a click on a row (or a mark) shows every field of the event.
//
// Loading: pages of 10,000 from GET /api/v1/timeline with its cursor,
// drawn as they arrive (at most MAX_EVENTS). When the range ends now,
// new events are asked for every 3 s and appear without a reload.
import { h, replace, stateBadge } from '../lib/dom.js';
import { setParams } from '../lib/url.js';
import { fmtTime, fmtDur, onClockChange, parseTime } from '../lib/fmt.js';
import { get } from '../lib/api.js';
import { describe, eventState, SIGNAL_KINDS } from '../lib/events.js';

const PAGE = 10000;
const MAX_EVENTS = 200000;
const ROW_H = 26;
const LANE_H = 34;
const LABEL_W = 150;
const KINDS = ['probe', 'state', 'dns', 'failover', 'marker', 'metric', 'lifecycle', 'gap', 'drop', 'annotation'];

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const keyOf = (ev) => `${ev.cluster}/${ev.node}/${ev.epoch}/${ev.seq}/${ev.kind}/${ev.time_ms}/${ev.target}` +
  (ev.kind === 'annotation' ? `/${ev.fields.id}` : '');
// Annotations are no cluster's: they get a lane of their own, "notes".
const laneKey = (ev) => (ev.kind === 'annotation' ? 'notes\u0000' : `${ev.region}\u0000${ev.cluster}`);
const whoOf = (ev) => (ev.kind === 'annotation' ? 'notes' : `${ev.cluster}/${ev.node}`);

export default {
  title: 'Timeline',
  render(main, route) {
    const q = () => new URLSearchParams(location.hash.split('?')[1] || '');
    const p = route.params;
    // ---- controls ----
    const from = h('input', { id: 't-from', size: 22, value: p.get('from') || '', placeholder: 'now-1h' });
    const to = h('input', { id: 't-to', size: 22, value: p.get('to') || '', placeholder: 'now' });
    const service = h('input', { id: 't-service', size: 12, value: p.get('service') || '' });
    const text = h('input', { id: 't-text', size: 16, value: p.get('q') || '', type: 'search' });
    const order = h('select', { id: 't-order' },
      h('option', { value: 'corrected', selected: p.get('order') !== 'agent' }, 'corrected (collector clock)'),
      h('option', { value: 'agent', selected: p.get('order') === 'agent' }, 'agent clock'));
    const chosen = new Set((p.get('kind') || '').split(',').filter(Boolean));
    const kindBoxes = KINDS.map((k) => h('label', { class: 'kind' },
      h('input', { type: 'checkbox', value: k, checked: chosen.size === 0 || chosen.has(k) }), ` ${k}`));
    const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
    const form = h('form', { class: 'toolbar' },
      h('label', { for: 't-from' }, 'From'), from, h('label', { for: 't-to' }, 'to'), to,
      h('label', { for: 't-service' }, 'Service'), service,
      h('label', { for: 't-text' }, 'Text'), text,
      h('label', { for: 't-order' }, 'Time'), order,
      h('fieldset', { class: 'kinds' }, h('legend', {}, 'Kinds'), kindBoxes),
      h('button', { type: 'submit' }, 'Apply'));
    const zoomIn = h('button', { type: 'button', title: 'Zoom in (+)' }, 'Zoom in');
    const zoomOut = h('button', { type: 'button', title: 'Zoom out (-)' }, 'Zoom out');
    const panL = h('button', { type: 'button', title: 'Earlier (←)' }, '← Earlier');
    const panR = h('button', { type: 'button', title: 'Later (→)' }, 'Later →');
    const reset = h('button', { type: 'button', title: 'The last hour, live (0)' }, 'Last hour');
    const canvas = h('canvas', { class: 'lanes-canvas', tabindex: 0, role: 'img',
      'aria-label': 'Events per cluster on one time axis. Drag to zoom; keys + and - zoom, arrows move, 0 goes back to the last hour. The list below holds the same events.' });
    const sel = h('div', { class: 'drag', hidden: true });
    const lanesBox = h('div', { class: 'lanes-box' }, canvas, sel);
    const list = h('div', { class: 'vlist', role: 'list', tabindex: 0, 'aria-label': 'Events, oldest first' });
    const spacer = h('div', { class: 'vspacer' });
    list.append(spacer);
    const details = h('aside', { class: 'details', hidden: true, 'aria-label': 'Event details', tabindex: -1 });

    main.append(h('h1', {}, 'Timeline'), form,
      h('div', { class: 'toolbar' }, zoomIn, zoomOut, panL, panR, reset), status, lanesBox,
      h('div', { class: 'tl-bottom' }, list, details));

    // ---- state ----
    let events = [], shown = [], seen = new Set(), lanes = [], laneOf = new Map();
    let lo = 0, hi = 0, live = false, gen = 0, liveTimer = null, frame = 0;

    const window_ = () => {
      const s = q(), now = Date.now();
      const f = parseTime(s.get('from') || 'now-1h', now);
      const t = s.get('to') ? parseTime(s.get('to'), now) : now;
      return [f, t, !s.get('to') || /^now$/.test(s.get('to'))];
    };
    const apiQuery = (f, t) => {
      const s = q(), a = new URLSearchParams();
      a.set('from', String(Math.floor(f)));
      a.set('to', String(Math.ceil(t)));
      a.set('order', s.get('order') === 'agent' ? 'agent' : 'corrected');
      a.set('limit', String(PAGE));
      if (s.get('service')) a.set('service', s.get('service'));
      if (s.get('kind')) a.set('kind', s.get('kind'));
      return a;
    };
    // The clock and the text filter, read from the URL once per load and
    // per filtering, not per event: parsing the hash 100k times a frame
    // froze the page for seconds.
    let agentClock = q().get('order') === 'agent';
    const tOf = (ev) => (agentClock ? ev.time_ms : ev.corrected_ms);
    const matches = (needle) => (ev) => !needle ||
      `${ev.cluster} ${ev.node} ${ev.kind} ${ev.target || ''} ${describe(ev)}`.toLowerCase().includes(needle);

    const add = (batch) => {
      let fresh = 0;
      for (const ev of batch) {
        const k = keyOf(ev);
        if (seen.has(k)) continue;
        seen.add(k);
        events.push(ev);
        fresh++;
        const lk = laneKey(ev);
        if (!laneOf.has(lk)) {
          laneOf.set(lk, -1);
          lanes.push({ key: lk, region: ev.region ?? 'notes', cluster: ev.cluster ?? '' });
          lanes.sort((a, b) => (a.region + a.cluster < b.region + b.cluster ? -1 : 1));
          lanes.forEach((l, i) => laneOf.set(l.key, i));
        }
      }
      return fresh;
    };
    const refilter = () => {
      const needle = (q().get('q') || '').toLowerCase();
      shown = needle ? events.filter(matches(needle)) : events.slice();
      list.scrollTop = Math.min(list.scrollTop, Math.max(0, shown.length * ROW_H - list.clientHeight));
      schedule();
    };

    // ---- drawing ----
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(() => { frame = 0; drawLanes(); drawList(); });
    };
    const xOf = (t, w) => LABEL_W + (t - lo) / (hi - lo) * (w - LABEL_W - 8);

    function drawLanes() {
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(320, lanesBox.clientWidth);
      const ht = Math.max(1, lanes.length) * LANE_H + 22;
      canvas.width = w * dpr;
      canvas.height = ht * dpr;
      canvas.style.width = `${w}px`;
      canvas.style.height = `${ht}px`;
      const c = canvas.getContext('2d');
      c.scale(dpr, dpr);
      c.clearRect(0, 0, w, ht);
      c.font = '11px sans-serif';
      const col = { fg: css('--fg'), muted: css('--muted'), line: css('--line'), ok: css('--ok'),
        bad: css('--bad'), warn: css('--warn'), unk: css('--unk'), link: css('--link') };
      let lastRegion = null;
      lanes.forEach((l, i) => {
        const y = i * LANE_H;
        c.fillStyle = col.muted;
        c.fillText(l.key === 'notes\u0000' ? 'notes'
          : l.region === lastRegion ? `  ${l.cluster}` : `${l.region} / ${l.cluster}`, 4, y + 20);
        lastRegion = l.region;
        c.strokeStyle = col.line;
        c.beginPath();
        c.moveTo(LABEL_W, y + LANE_H - 0.5);
        c.lineTo(w, y + LANE_H - 0.5);
        c.stroke();
      });
      // Probes: one strip per lane, per pixel column the worst result.
      const cols = lanes.map(() => new Uint8Array(w));
      const signals = [];
      for (const ev of shown) {
        const t = tOf(ev);
        if (t < lo || t > hi) continue;
        const li = laneOf.get(laneKey(ev));
        if (ev.kind === 'probe' || ev.kind === 'metric') {
          const x = Math.round(xOf(t, w));
          const fail = ev.kind === 'probe' && ev.fields && ev.fields.ok === false ? 2 : 1;
          if (cols[li][x] < fail) cols[li][x] = fail;
        } else {
          signals.push([ev, li, xOf(t, w)]);
        }
      }
      cols.forEach((cl, li) => {
        const y = li * LANE_H + LANE_H - 9;
        for (let x = 0; x < w; x++) {
          if (!cl[x]) continue;
          c.fillStyle = cl[x] === 2 ? col.bad : col.unk;
          c.globalAlpha = cl[x] === 2 ? 0.9 : 0.35;
          c.fillRect(x, y, 1, 6);
        }
      });
      c.globalAlpha = 1;
      for (const [ev, li, x] of signals) {
        const y = li * LANE_H + 12;
        const st = eventState(ev);
        c.fillStyle = st === 'healthy' ? col.ok : st === 'unhealthy' ? col.bad
          : st === 'degraded' ? col.warn : col.link;
        if (ev.kind === 'gap' || ev.kind === 'drop') {
          c.fillRect(x - 2, y - 8, 4, 16);
        } else if (ev.kind === 'dns') {
          c.beginPath(); c.moveTo(x, y - 7); c.lineTo(x + 6, y); c.lineTo(x, y + 7); c.lineTo(x - 6, y); c.fill();
        } else if (ev.kind === 'failover' || ev.kind === 'marker') {
          c.beginPath(); c.moveTo(x - 6, y - 7); c.lineTo(x + 6, y - 7); c.lineTo(x, y + 6); c.fill();
          c.globalAlpha = 0.4;
          c.fillRect(x, 0, 1, lanes.length * LANE_H);
          c.globalAlpha = 1;
        } else {
          c.beginPath(); c.arc(x, y, 5, 0, Math.PI * 2); c.fill();
        }
      }
      // The axis: a few ticks.
      c.fillStyle = col.muted;
      const y = lanes.length * LANE_H + 15;
      for (let i = 0; i <= 4; i++) {
        const t = lo + (hi - lo) * i / 4;
        const label = fmtTime(t, { ms: hi - lo < 120000 });
        const x = xOf(t, w);
        c.fillText(label, Math.min(Math.max(LABEL_W, x - 40), w - 110), y);
      }
      canvas.dataset.events = String(shown.length);
      canvas._signals = signals;
    }

    function row(ev, i) {
      const st = eventState(ev);
      return h('div', { role: 'listitem', class: `vrow${SIGNAL_KINDS.has(ev.kind) ? ' signal' : ''}`,
        dataset: { kind: ev.kind, i: String(i) } },
      h('button', { type: 'button', class: 'vbtn', onclick: () => show(ev) },
        h('time', {}, fmtTime(tOf(ev))), ' ',
        h('span', { class: 'vcl' }, whoOf(ev)), ' ',
        stateBadge(st, ev.kind), ' ',
        h('span', { class: 'vtg' }, ev.target || ''), ' ',
        h('span', { class: 'vwhat' }, describe(ev))));
    }

    function drawList() {
      spacer.style.height = `${shown.length * ROW_H}px`;
      const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5);
      const last = Math.min(shown.length, first + Math.ceil((list.clientHeight || 400) / ROW_H) + 10);
      const rows = [];
      for (let i = first; i < last; i++) {
        const r = row(shown[i], i);
        r.style.top = `${i * ROW_H}px`;
        rows.push(r);
      }
      replace(list, spacer, rows);
    }
    list.addEventListener('scroll', () => schedule());

    function show(ev) {
      const t = (ms) => `${fmtTime(ms, { date: true })} (${ms})`;
      replace(details,
        h('div', { class: 'details-head' }, h('h2', {}, `${ev.kind} · ${whoOf(ev)}`),
          h('button', { type: 'button', onclick: () => { details.hidden = true; } }, 'Close')),
        h('dl', {},
          [['cluster', ev.cluster], ['region', ev.region], ['node', ev.node], ['epoch', ev.epoch],
            ['seq', ev.seq], ['kind', ev.kind], ['target', ev.target], ['agent time', t(ev.time_ms)],
            ['clock offset', ev.clock_offset_ms === null ? '—' : fmtDur(ev.clock_offset_ms)],
            ['corrected time', t(ev.corrected_ms)], ['received', t(ev.received_ms)],
            ['what', describe(ev)]].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined ? '—' : String(v))])),
        h('h3', {}, 'Fields'), h('pre', {}, JSON.stringify(ev.fields, null, 2)));
      details.hidden = false;
      details.focus();
    }

    // ---- zoom and pan ----
    const setRange = (f, t) => {
      const now = Date.now();
      setParams({ from: new Date(Math.round(f)).toISOString(), to: t >= now - 1000 ? null : new Date(Math.round(t)).toISOString() });
      from.value = q().get('from') || '';
      to.value = q().get('to') || '';
      load();
    };
    const zoom = (k) => { const m = (lo + hi) / 2, half = (hi - lo) * k / 2; setRange(m - half, Math.min(Date.now(), m + half)); };
    const pan = (k) => { const d = (hi - lo) * k; setRange(lo + d, Math.min(Date.now(), hi + d)); };
    zoomIn.addEventListener('click', () => zoom(0.5));
    zoomOut.addEventListener('click', () => zoom(2));
    panL.addEventListener('click', () => pan(-0.5));
    panR.addEventListener('click', () => pan(0.5));
    reset.addEventListener('click', () => { setParams({ from: null, to: null }); from.value = ''; to.value = ''; load(); });
    canvas.addEventListener('keydown', (e) => {
      const act = { '+': () => zoom(0.5), '=': () => zoom(0.5), '-': () => zoom(2), ArrowLeft: () => pan(-0.25),
        ArrowRight: () => pan(0.25), 0: () => reset.click() }[e.key];
      if (act) { e.preventDefault(); act(); }
    });
    let dragX = null;
    const px = (e) => e.clientX - canvas.getBoundingClientRect().left;
    canvas.addEventListener('pointerdown', (e) => { dragX = px(e); canvas.setPointerCapture(e.pointerId); });
    canvas.addEventListener('pointermove', (e) => {
      if (dragX === null) return;
      const x = px(e);
      sel.hidden = Math.abs(x - dragX) < 4;
      sel.style.left = `${Math.min(x, dragX)}px`;
      sel.style.width = `${Math.abs(x - dragX)}px`;
    });
    canvas.addEventListener('pointerup', (e) => {
      const x = px(e), x0 = dragX;
      dragX = null;
      sel.hidden = true;
      const w = canvas.clientWidth, tAt = (v) => lo + (v - LABEL_W) / (w - LABEL_W - 8) * (hi - lo);
      if (x0 !== null && Math.abs(x - x0) >= 4) {
        setRange(tAt(Math.min(x, x0)), tAt(Math.max(x, x0)));
        return;
      }
      // A click: the nearest mark within 8 px.
      const y = e.clientY - canvas.getBoundingClientRect().top, li = Math.floor(y / LANE_H);
      let best = null, bd = 9;
      for (const [ev, l, sx] of canvas._signals || []) {
        if (l === li && Math.abs(sx - x) < bd) { best = ev; bd = Math.abs(sx - x); }
      }
      if (best) show(best);
    });

    // ---- loading ----
    async function load() {
      const my = ++gen;
      clearTimeout(liveTimer);
      const [f, t, isLive] = window_();
      if (Number.isNaN(f) || Number.isNaN(t) || f >= t) {
        status.textContent = 'The range is not valid: from must be before to (e.g. now-1h to now).';
        return;
      }
      lo = f; hi = t; live = isLive;
      agentClock = q().get('order') === 'agent';
      events = []; seen = new Set(); lanes = []; laneOf = new Map();
      refilter();
      let cursor = null, pages = 0, truncated = false;
      status.textContent = 'Loading…';
      try {
        do {
          const a = apiQuery(f, t);
          if (cursor) a.set('cursor', cursor);
          const j = await get(`timeline?${a}`);
          if (my !== gen) return;
          add(j.events);
          cursor = j.next;
          pages++;
          refilter();
          status.textContent = `${events.length} events${cursor ? ', loading more…' : ''}`;
          if (events.length >= MAX_EVENTS && cursor) { truncated = true; break; }
        } while (cursor);
      } catch (e) {
        if (my === gen) status.textContent = `Could not load the timeline: ${e.message}`;
        return;
      }
      status.textContent = `${events.length} events from ${fmtTime(lo, { date: true })} to ${fmtTime(hi, { date: true })}` +
        (truncated ? ` (the first ${MAX_EVENTS}: zoom in to see the rest)` : '') + (live ? ', live' : '') + '.';
      if (live) liveTimer = setTimeout(() => tick(my), 3000);
    }

    // New events since the newest we have (a little before, as agents
    // deliver late; duplicates are dropped by key).
    async function tick(my) {
      if (my !== gen) return;
      const now = Date.now();
      const since = Math.max(lo, (events.length ? Math.max(...events.slice(-500).map(tOf)) : lo) - 60000);
      try {
        let cursor = null, fresh = 0;
        do {
          const a = apiQuery(since, now);
          if (cursor) a.set('cursor', cursor);
          const j = await get(`timeline?${a}`);
          if (my !== gen) return;
          fresh += add(j.events);
          cursor = j.next;
        } while (cursor && fresh < PAGE);
        const span = hi - lo;
        hi = now;
        lo = now - span;
        if (fresh) {
          events.sort((x, y) => tOf(x) - tOf(y));
          const atEnd = list.scrollTop + list.clientHeight >= shown.length * ROW_H - ROW_H;
          refilter();
          if (atEnd) list.scrollTop = shown.length * ROW_H;
          status.textContent = `${events.length} events, live; ${fresh} new at ${fmtTime(now)}.`;
        } else {
          schedule();
        }
      } catch (e) {
        status.textContent = `Live updates failed (${e.message}); trying again.`;
      }
      liveTimer = setTimeout(() => tick(my), 3000);
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      for (const el of [from, to]) el.setCustomValidity(el.value && Number.isNaN(parseTime(el.value)) ? 'a time such as 2026-12-04T14:39Z, now-1h or Unix ms' : '');
      if (!form.reportValidity()) return;
      const ks = kindBoxes.map((l) => l.firstChild).filter((b) => b.checked).map((b) => b.value);
      setParams({ from: from.value.trim(), to: to.value.trim(), service: service.value.trim(),
        q: text.value.trim(), order: order.value === 'agent' ? 'agent' : null,
        kind: ks.length === KINDS.length || ks.length === 0 ? null : ks.join(',') });
      load();
    });
    text.addEventListener('input', () => { setParams({ q: text.value.trim() }); refilter(); });

    const ro = new ResizeObserver(() => schedule());
    ro.observe(lanesBox);
    const offClock = onClockChange(schedule);
    load();
    return () => { gen++; clearTimeout(liveTimer); ro.disconnect(); offClock(); if (frame) cancelAnimationFrame(frame); };
  },
};
