// dom.js -- building elements without innerHTML: every string from the
// API becomes a text node, so nothing a probe or an agent reports can
// inject markup (and the CSP forbids inline script and style anyway).

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
