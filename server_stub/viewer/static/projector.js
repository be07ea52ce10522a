// Compute a projection from the page: method and main parameters go to the server, which runs
// the SDK's reduction as a background job (POST /runs/{run}/projections) and stores it in the
// run like any other projection. The page polls the job (queued, running, done or failed with
// the reducer's error) and shows the new projection once it is stored.
import { api } from './api.js';
import { h } from './dom.js';

const POLL_MS = 500;
// the main parameters per method: [parameter, label, default, min, max, step]
const FIELDS = {
  pca: [],
  tsne: [['perplexity', 'perplexity', 30, 2, 500, 1], ['n_iter', 'iterations', 500, 50, 5000, 50]],
  umap: [['n_neighbors', 'neighbours', 15, 2, 500, 1], ['n_epochs', 'epochs', 200, 10, 5000, 10]],
  pacmap: [['n_neighbors', 'neighbours', 10, 2, 500, 1], ['num_iters', 'iterations', 250, 10, 5000, 10]],
};

export class Projector {
  constructor(view) {
    this.view = view;
    this.job = null; // the last job's state as the server reported it
    this._timer = null;
  }

  section() {
    const view = this.view, el = view.el;
    el.pjMethod = h('select', { id: 'pj-method', onchange: () => this.renderFields() },
      ['pca', 'tsne', 'umap', 'pacmap'].map((m) => h('option', { value: m, text: { pca: 'PCA', tsne: 't-SNE', umap: 'UMAP', pacmap: 'PaCMAP' }[m] })));
    el.pjComponents = h('select', { id: 'pj-components' }, h('option', { value: '2', text: '2D' }), h('option', { value: '3', text: '3D' }));
    el.pjFields = h('div', { id: 'pj-fields', class: 'fields' });
    el.pjSeed = h('input', { type: 'number', id: 'pj-seed', min: '0', step: '1', value: '0', title: 'random_state: the same seed gives the same projection' });
    el.pjScope = h('select', { id: 'pj-scope', title: 'every step of the group through one reducer (a timeline), or this embedding alone' },
      h('option', { value: 'group', text: 'all steps of the group' }), h('option', { value: 'embedding', text: 'this embedding only' }));
    el.pjRun = h('button', { type: 'button', id: 'pj-run', text: 'Compute', onclick: () => this.start() });
    el.pjStatus = h('div', { id: 'pj-status', class: 'muted', role: 'status' });
    this.renderFields();
    return h('section', { class: 'ctl', id: 'sec-compute' }, h('h3', { text: 'Compute a projection' }),
      h('div', { class: 'row' }, el.pjMethod, el.pjComponents), el.pjFields,
      h('label', { class: 'field' }, 'random_state ', el.pjSeed), h('label', {}, 'Scope ', el.pjScope),
      h('div', { class: 'row' }, el.pjRun), el.pjStatus);
  }

  /** The parameter inputs of the chosen method; the scope choice only when there is a group. */
  renderFields() {
    const el = this.view.el;
    el.pjFields.replaceChildren(...FIELDS[el.pjMethod.value].map(([name, label, value, min, max, step]) =>
      h('label', {}, `${label} `, h('input', { type: 'number', 'data-param': name, id: `pj-${name}`, value: String(value),
        min: String(min), max: String(max), step: String(step) }))));
    const grouped = this.view.emb && this.view.emb.group !== null && this.view.emb.group !== undefined;
    el.pjScope.disabled = !grouped;
    if (!grouped) el.pjScope.value = 'embedding';
  }

  request() {
    const el = this.view.el;
    const params = { n_components: parseInt(el.pjComponents.value, 10) };
    if (el.pjSeed.value !== '') params.random_state = parseInt(el.pjSeed.value, 10);
    for (const input of el.pjFields.querySelectorAll('input[data-param]')) {
      if (input.value !== '') params[input.dataset.param] = Number(input.value);
    }
    return { embedding_id: this.view.emb.id, method: el.pjMethod.value, params, scope: el.pjScope.value };
  }

  async start() {
    const view = this.view, el = view.el;
    el.pjRun.disabled = true;
    try {
      this.job = await api.startProjection(view.runId, this.request());
    } catch (err) {
      this.show({ state: 'failed', error: err.message });
      el.pjRun.disabled = false;
      return;
    }
    this.show(this.job);
    this.poll();
  }

  poll() {
    clearTimeout(this._timer);
    this._timer = setTimeout(async () => {
      const view = this.view;
      if (view.disposed || !this.job) return;
      try {
        this.job = await api.projection(view.runId, this.job.id);
      } catch (err) {
        this.show({ state: 'failed', error: err.message });
        view.el.pjRun.disabled = false;
        return;
      }
      this.show(this.job);
      if (this.job.state === 'done') {
        view.el.pjRun.disabled = false;
        await view.adoptComputed(this.job.reduction_ids);
      } else if (this.job.state === 'failed') {
        view.el.pjRun.disabled = false;
      } else {
        this.poll();
      }
    }, POLL_MS);
  }

  show(job) {
    const s = this.view.el.pjStatus;
    s.classList.toggle('error', job.state === 'failed');
    s.dataset.state = job.state;
    let text;
    if (job.state === 'queued') text = `Queued${job.position ? ` (${job.position} ahead)` : ''}…`;
    else if (job.state === 'running') text = `Running ${job.label || ''}: ${job.elapsed ?? 0} s${job.cpu_seconds !== undefined ? `, ${job.cpu_seconds} s CPU` : ''}…`;
    else if (job.state === 'done') text = `Done in ${job.elapsed ?? 0} s: stored in the run (${job.reduction_ids.length} projection${job.reduction_ids.length === 1 ? '' : 's'}).`;
    else text = `Failed: ${job.error}`;
    s.textContent = text;
    s.title = text;
  }

  dispose() { clearTimeout(this._timer); }
}
