// pages/overview.js -- placeholder until the page is built (issue 13).
import { h } from '../lib/dom.js';

export default {
  title: 'Overview',
  render(main) {
    main.append(h('h1', {}, 'Overview'), h('p', { class: 'muted' }, 'Not built yet.'));
    return null;
  },
};
