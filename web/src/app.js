// app.js -- the dashboard's shell: routes "#/page/...?filters" to a page
// module (pages/*.js, loaded when first shown), keeps the navigation,
// the UTC/local switch, the sign-in form and the "collector not ready"
// banner.
//
// A page module's default export is { title, render(main, route) }:
// render fills @main for @route (url.js current(): page, path, params)
// and returns a function that stops what it started (polling, timers,
// listeners), called before the next page renders. Pages re-render on
// their own when their data or the clock switch changes.
import { h, replace } from './lib/dom.js';
import { current } from './lib/url.js';
import { clockIsLocal, setClockLocal } from './lib/fmt.js';
import { token, setToken } from './lib/api.js';

const PAGES = {
  overview: 'overview',
  latency: 'latency',
  timeline: 'timeline',
  incidents: 'incidents',   // #/incidents/ID is the incident page
  agents: 'agents',
};

const main = document.getElementById('main');
let stop = null;
let shown = null;       // the hash the current page was rendered for

function moduleFor(route) {
  if (route.page === 'incidents' && route.path.length > 1) return 'incident';
  return PAGES[route.page] || null;
}

async function render() {
  const route = current();
  if (stop) { stop(); stop = null; }
  shown = location.hash;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === route.page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const name = moduleFor(route);
  if (!name) {
    document.title = 'Not found · Sextant';
    replace(main, h('h1', {}, 'Not found'),
      h('p', {}, 'No page here. ', h('a', { href: '#/' }, 'Go to the overview'), '.'));
    return;
  }
  try {
    const mod = (await import(`./pages/${name}.js`)).default;
    if (shown !== location.hash) return;   // navigated on meanwhile
    document.title = `${mod.title} · Sextant`;
    main.replaceChildren();
    stop = mod.render(main, route) || null;
  } catch (e) {
    replace(main, h('h1', {}, 'This page failed to load'), h('p', { class: 'error' }, String(e)));
  }
}

// A filter change made by a page with url.js setParams() replaces the
// URL without a hashchange; a link or the back button fires one.
window.addEventListener('hashchange', () => {
  if (location.hash !== shown) render();
});

// ---- the UTC/local switch ----
const clock = document.getElementById('clock');
function showClock() {
  const local = clockIsLocal();
  clock.textContent = local ? 'Local time' : 'UTC';
  clock.setAttribute('aria-pressed', String(local));
}
clock.addEventListener('click', () => { setClockLocal(!clockIsLocal()); showClock(); });
showClock();

// ---- signing in: the API's read token, for this tab only ----
const signout = document.getElementById('signout');
signout.hidden = !token();
signout.addEventListener('click', () => { setToken(''); signout.hidden = true; signIn(); });

function signIn() {
  if (stop) { stop(); stop = null; }
  shown = null;
  document.title = 'Sign in · Sextant';
  const input = h('input', {
    id: 'token', type: 'password', autocomplete: 'current-password',
    required: true, spellcheck: 'false',
  });
  const form = h('form', { class: 'signin' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'This collector asks for an API token (one of its ',
      h('code', {}, 'api_tokens'), '). It is kept in this tab only.'),
    h('label', { for: 'token' }, 'API token'), input,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    signout.hidden = false;
    render();
  });
  replace(main, form);
  input.focus();
}
window.addEventListener('sextant-auth', () => { if (shown !== null) signIn(); });

// ---- the collector's own readiness (GET /readyz, open to all) ----
const banner = document.getElementById('banner');
async function ready() {
  try {
    const res = await fetch('/readyz', { headers: { Accept: 'application/json' } });
    if (res.ok) {
      await res.text();     // read to the end: the request is done
      banner.replaceChildren();
      banner.className = '';
    } else {
      let why = `${res.status}`;
      try { const j = await res.json(); why = j.detail || j.error || why; } catch { /* */ }
      replace(banner, h('strong', {}, 'Collector not ready: '), why);
      banner.className = 'banner-bad';
    }
  } catch {
    replace(banner, h('strong', {}, 'Collector unreachable: '),
      'the data below may be out of date.');
    banner.className = 'banner-bad';
  }
  setTimeout(ready, 5000);
}
ready();

render();
