// Two runs side by side on the same inputs (/view?a=RUN_A&b=RUN_B&title=T[&group=G][&step=S]
// [&id=COLUMN][&k=10][&color=C][&thumbs=off][&dims=2]): one embedding view per run, both coloured by each point's
// neighbourhood agreement between the runs (k-NN Jaccard in the original spaces, from the
// server's /compare route), with the linear CKA and the classes that differ most above them.
// Rows are joined on the metadata column `id` when given (the runs may hold their rows in any
// order), else row by row: hovering a point marks the same sample in the other view, and a
// selection in one (lasso, legend, top N, neighbours' "Select these") is the other's too.
import { api, getJSON } from './api.js';
import { h, clear } from './dom.js';
import { EmbeddingView } from './view.js';
import { DEBUG } from './debug.js';

export const AGREEMENT = 'agreement'; // the column added to both views
const TOP_CLASSES = 3;

/** The embedding of `title` (and `group`) at `step`, else its last step, that has a projection. */
export function pickEmbedding(embeddings, title, group, step) {
  const found = embeddings.filter((e) => e.title === title && (!group || e.group === group) && e.reductions.length);
  if (step !== null && step !== undefined) return found.find((e) => String(e.step) === String(step)) || null;
  return found.sort((x, y) => (x.step ?? -1) - (y.step ?? -1) || (x.seq ?? 0) - (y.seq ?? 0)).pop() || null;
}

/**
 * From the server's answer (agreement[i] of rows rows_a[i] and rows_b[i]): per side the
 * agreement of each row (null where the other run lacks the sample) and the row of the same
 * sample in the other run (Int32Array, -1 where none).
 */
export function joinRows(answer, nA, nB) {
  const agreeA = new Array(nA).fill(null), agreeB = new Array(nB).fill(null);
  const aToB = new Int32Array(nA).fill(-1), bToA = new Int32Array(nB).fill(-1);
  answer.rows_a.forEach((ra, i) => {
    const rb = answer.rows_b[i], v = answer.agreement[i];
    agreeA[ra] = v; agreeB[rb] = v; aToB[ra] = rb; bToA[rb] = ra;
  });
  return { agreeA, agreeB, aToB, bToA };
}

/** The row i of the other view for a map (null: the same row). */
function mapRow(map, i) { return map ? (i >= 0 && i < map.length ? map[i] : -1) : i; }

/** What one view's selection tells the other: hover and selection, rows mapped through `map`. */
function linkTo(target, map) {
  return {
    showLinkedHover: (i) => target.showLinkedHover(i >= 0 ? mapRow(map, i) : -1),
    set: (list, fromLink) => target.set(list.map((i) => mapRow(map, i)).filter((j) => j >= 0), fromLink),
  };
}

export class Comparison {
  constructor(root, params) {
    this.root = root;
    this.params = params;
    this.views = [];
    this.answer = null; // the server's comparison, once it arrived
    this.maps = null; // [aToB, bToA] row maps, null while linked row by row
  }

  async start() {
    const p = this.params, title = p.get('title'), idColumn = p.get('id') || null;
    if (!p.get('a') || !p.get('b') || !title) throw new Error('The comparison needs ?a=RUN_A&b=RUN_B&title=TITLE');
    const ids = [p.get('a'), p.get('b')];
    const [runs, lists] = await Promise.all([Promise.all(ids.map((id) => api.run(id))), Promise.all(ids.map((id) => api.embeddings(id)))]);
    const embs = lists.map((list, k) => {
      const emb = pickEmbedding(list, title, p.get('group'), p.get('step'));
      if (!emb) throw new Error(`Run ${ids[k]} has no projected embedding titled "${title}"${p.get('step') ? ` at step ${p.get('step')}` : ''}`);
      return emb;
    });
    if (!idColumn && embs[0].n !== embs[1].n) {
      throw new Error(`The views are linked by row, so both embeddings need the same rows: run ${ids[0]} has ${embs[0].n}, ` +
        `run ${ids[1]} has ${embs[1].n} (add &id=COLUMN to join them on a column of sample ids)`);
    }
    const query = new URLSearchParams({ run_a: runs[0].run_id, emb_a: embs[0].id, run_b: runs[1].run_id, emb_b: embs[1].id });
    for (const key of ['id', 'k', 'label']) if (p.get(key)) query.set(key, p.get(key));
    const answerP = getJSON(`/compare?${query}`);
    answerP.catch(() => {});
    this.summary = h('div', { class: 'compare-summary', id: 'compare-summary' },
      h('span', { class: 'muted', text: 'Comparing the two runs\u2019 neighbourhoods in their original spaces…' }));
    const box = h('div', { class: 'compare', id: 'compare' });
    clear(this.root).append(h('div', { class: 'compare-page' }, this.summary, box));
    const hooks = [];
    runs.forEach((run, k) => {
      const host = h('div', { class: 'compare-host' });
      box.append(h('div', { class: 'compare-side', id: `compare-${'ab'[k]}` },
        h('div', { class: 'compare-title', text: `${'AB'[k]}: ${run.name || run.run_id} · ${embs[k].title}${embs[k].step !== null && embs[k].step !== undefined ? ` @ ${embs[k].step}` : ''}` }), host));
      const vp = new URLSearchParams({ run: run.run_id, emb: embs[k].id });
      for (const key of ['color', 'metric', 'thumbs', 'dims']) if (p.get(key)) vp.set(key, p.get(key));
      const view = new EmbeddingView(host, run, vp, { onUrl: () => {}, embeddings: Promise.resolve(lists[k]) });
      hooks.push(DEBUG ? window.__viewer : null);
      this.views.push(view);
    });
    if (DEBUG) {
      const self = this;
      window.__compare = { a: hooks[0], b: hooks[1], views: this.views,
        get answer() { return self.answer; }, get error() { return self.error || null; },
        get maps() { return self.maps && self.maps.map((m) => Array.from(m)); } };
    }
    await Promise.all(this.views.map((v) => v.start()));
    const [a, b] = this.views;
    if (!idColumn) this._link(null, null); // row by row until (and unless) the answer says otherwise
    for (const v of this.views) v.togglePanel(false); // two plots need the width; ☰ or P opens the panels
    let answer;
    try {
      answer = await answerP;
    } catch (err) {
      this.error = err.message;
      clear(this.summary).append(h('span', { class: 'error', text: `Agreement not computed: ${err.message}` }));
      return;
    }
    if (a.disposed) return;
    const { agreeA, agreeB, aToB, bToA } = joinRows(answer, a.n, b.n);
    this.answer = answer;
    if (idColumn) this._link(aToB, bToA);
    [[a, agreeA], [b, agreeB]].forEach(([view, values]) => this._colour(view, values, !p.get('color')));
    this._renderSummary(answer);
  }

  _link(aToB, bToA) {
    const [a, b] = this.views;
    this.maps = aToB ? [aToB, bToA] : null;
    a.selection.linked = linkTo(b.selection, aToB);
    b.selection.linked = linkTo(a.selection, bToA);
  }

  /** Add the agreement column to a view's metadata (on the fixed scale 0..1) and colour by it. */
  _colour(view, values, colourBy) {
    const column = { name: AGREEMENT, type: 'float', values, domain: [0, 1] };
    view.meta = { ...view.meta, columns: [...view.meta.columns.filter((c) => c.name !== AGREEMENT), column] };
    view.colouring.onMetadata(false);
    if (colourBy) {
      view.el.colorSel.value = AGREEMENT;
      view.colouring.setColor(AGREEMENT);
    }
  }

  _renderSummary(ans) {
    const fmt = (v) => (v === null || v === undefined ? '–' : Number(v).toFixed(3));
    const stats = h('span', { class: 'compare-stats' },
      `k-NN agreement (k = ${ans.k}, original spaces, ${ans.shared.toLocaleString()} shared points${ans.join ? `, joined on ${ans.join}` : ''}): mean `,
      h('strong', { id: 'compare-mean', text: fmt(ans.mean_agreement) }), ' · linear CKA ', h('strong', { id: 'compare-cka', text: fmt(ans.linear_cka) }));
    if (ans.differing.length) {
      stats.append(` · classes (${ans.labels_from}) whose neighbourhoods differ most: `,
        h('span', { id: 'compare-classes' }, ans.differing.slice(0, TOP_CLASSES).map((c, r) => h('span', { class: 'compare-class' },
          r ? ', ' : '', h('strong', { text: String(c.label) }), ` (${fmt(c.mean)}, ${c.count} points)`))));
    }
    const legend = h('span', { class: 'compare-legend', title: 'colour: each point\u2019s k-NN agreement between the runs' },
      h('span', { text: `${AGREEMENT} 0` }), h('span', { class: 'ramp' }), h('span', { text: '1' }));
    clear(this.summary).append(legend, stats);
  }

  dispose() { for (const v of this.views) v.dispose(); }
}
