// pages/agents.js -- placeholder until the page is built (issue 13).
import { h } from '../lib/dom.js';

export default {
  title: 'Agents',
  render(main) {
    main.append(h('h1', {}, 'Agents'), h('p', { class: 'muted' }, 'Not built yet.'));
    return null;
  },
};
