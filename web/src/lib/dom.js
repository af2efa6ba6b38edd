// dom.js -- building elements without innerHTML: every string from the
// API becomes a text node, so nothing a probe or an agent reports can
// inject markup (and the CSP forbids inline script and style anyway).
// Also: redrawing a live part in place (refresh), relative times that
// keep ticking (agoSpan, tickAgo) and state badges (stateBadge).
import { fmtAgo } from './fmt.js';

// h('a', { href: '#/x', class: 'y', onclick: fn }, 'text', child, ...)
// Attributes starting with "on" become listeners; null/false/undefined
// attributes and children are skipped; arrays of children are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replaces every child of @el with @children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Like replace(), for live pages that redraw a part every few seconds:
// the element that had the focus inside @el gets it back in the new
// content (found by its data-key), and @el and every descendant with a
// data-key keep their scroll offsets, so a person tabbing through a
// table or scrolled to its right is not thrown back by an update.
export function refresh(el, ...children) {
  const active = el.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = active && active.dataset.key;
  const scrolls = [...el.querySelectorAll('[data-key]')]
    .filter((e) => e.scrollLeft || e.scrollTop)
    .map((e) => [e.dataset.key, e.scrollLeft, e.scrollTop]);
  const own = [el.scrollLeft, el.scrollTop];
  replace(el, ...children);
  const byKey = (k) => el.querySelector(`[data-key="${CSS.escape(k)}"]`);
  for (const [k, left, top] of scrolls) {
    const e = byKey(k);
    if (e) { e.scrollLeft = left; e.scrollTop = top; }
  }
  [el.scrollLeft, el.scrollTop] = own;
  if (focusKey) {
    const e = byKey(focusKey);
    if (e) e.focus({ preventScroll: true });
  }
  return el;
}

// "3 min ago" that stays true: tickAgo(root) rewrites every such span
// under @root from its data-ago (ms), so a page calls it on a timer
// instead of redrawing everything each second.
export function agoSpan(ms, attrs) {
  return h('span', { ...attrs, 'data-ago': ms ?? null }, fmtAgo(ms));
}
export function tickAgo(root, now = Date.now()) {
  for (const e of root.querySelectorAll('[data-ago]')) {
    e.textContent = fmtAgo(Number(e.dataset.ago), now);
  }
}

// A state word with its colour class and an icon, never colour alone
// (../DASHBOARD principle: every colour also has a word).
const STATES = {
  healthy: ['✔', 'healthy'],
  unhealthy: ['✖', 'unhealthy'],
  degraded: ['◐', 'degraded'],
  split: ['◐', 'split'],
  unknown: ['?', 'unknown'],
  stale: ['◌', 'stale'],
};
export function stateBadge(state, text) {
  const [icon, word] = STATES[state] || STATES.unknown;
  return h('span', { class: `state state-${STATES[state] ? state : 'unknown'}` },
    h('span', { 'aria-hidden': 'true' }, icon), ' ', text || word);
}
