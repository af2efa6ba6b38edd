// fmt.js -- one clock and one way to write times and durations: UTC by
// default ("14:39:57.193Z"), local time when the switch says so
// (localStorage "sextant.clock" = "local"); durations as "2.17 s",
// "4 min 12 s"; sizes as "3.4 KiB".

const KEY = 'sextant.clock';
const listeners = new Set();

export function clockIsLocal() {
  try { return localStorage.getItem(KEY) === 'local'; } catch { return false; }
}

export function setClockLocal(local) {
  try { localStorage.setItem(KEY, local ? 'local' : 'utc'); } catch { /* private mode */ }
  for (const fn of listeners) fn();
}

// Called whenever the clock switch changes (pages re-render their times).
export function onClockChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

function parts(ms) {
  const d = new Date(ms);
  if (clockIsLocal()) {
    const off = -d.getTimezoneOffset();
    const sign = off < 0 ? '-' : '+';
    return {
      date: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
      time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
      frac: pad(d.getMilliseconds(), 3),
      zone: `${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`,
    };
  }
  return {
    date: `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
    time: `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`,
    frac: pad(d.getUTCMilliseconds(), 3),
    zone: 'Z',
  };
}

// "14:39:57.193Z"; { date: true } adds the day, { ms: false } drops the
// milliseconds. null/undefined: "—".
export function fmtTime(ms, opt = {}) {
  if (ms === null || ms === undefined) return '—';
  const p = parts(ms);
  const t = p.time + (opt.ms === false ? '' : '.' + p.frac) + p.zone;
  return opt.date ? `${p.date} ${t}` : t;
}

// A duration in ms: "850 ms", "2.17 s", "4 min 12 s", "3 h 5 min",
// "2 d 4 h". null: "—". { sign: true } writes "+" before a positive
// one (clock offsets: "+12 ms", "-1.20 s").
export function fmtDur(ms, opt = {}) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const sign = ms < 0 ? '-' : opt.sign && ms > 0 ? '+' : '';
  ms = Math.abs(ms);
  if (ms < 1000) return `${sign}${Math.round(ms)} ms`;
  if (ms < 60000) return `${sign}${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${sign}${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`;
  return `${sign}${Math.floor(s / 86400)} d ${Math.floor(s % 86400 / 3600)} h`;
}

// A latency in microseconds: "41 ms", "0.8 ms", "1.20 s". null: "—".
export function fmtLatency(us) {
  if (us === null || us === undefined) return '—';
  if (us < 1000) return `${(us / 1000).toFixed(2)} ms`;
  if (us < 100000) return `${(us / 1000).toFixed(us < 10000 ? 1 : 0)} ms`;
  if (us < 1000000) return `${Math.round(us / 1000)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

// "512 B", "3.4 KiB", "12.0 MiB"; null: "—".
export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

// "99.95 %" from a ratio 0..1; null: "—".
export function fmtPct(r) {
  if (r === null || r === undefined) return '—';
  return `${(r * 100).toFixed(r >= 0.999 && r < 1 ? 3 : 2)} %`;
}

// "3 min ago" from a time in ms, against @now (default Date.now()).
export function fmtAgo(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return 'never';
  return `${fmtDur(Math.max(0, now - ms))} ago`;
}

// Parses what a person types for a time: RFC 3339 ("2026-12-04T14:39Z"),
// a plain number of Unix ms, or "now" / "now-6h" / "now-30m" / "now-7d".
// Returns ms, or NaN.
export function parseTime(s, now = Date.now()) {
  s = String(s || '').trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  const rel = /^now(?:-(\d+(?:\.\d+)?)([smhd]))?$/.exec(s);
  if (rel) {
    const unit = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] || 's'];
    return now - (rel[1] ? Number(rel[1]) * unit : 0);
  }
  const t = Date.parse(s);
  return Number.isNaN(t) ? NaN : t;
}
