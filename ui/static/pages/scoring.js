// Batch scoring: the server's score jobs (a model over a dataset version or
// an artifact, predictions written to the artifact store), their progress,
// and a form that submits one.
import { h, link, table, kv, badge, fmtTime, fmtDuration, fmtNum, errorBox, section, toast } from '../lib/dom.js';
import { v1 } from '../lib/api.js';

export async function render(ctx) {
  const id = ctx.segments[1];
  return id ? jobPage(ctx, id) : jobList(ctx);
}

function progress(j) {
  const total = j.rows_total > 0 ? j.rows_total : null;
  const p = h('progress', { max: total ?? 1, value: total ? j.rows_done : (j.state === 'succeeded' ? 1 : 0), 'aria-label': `Rows scored of job ${j.id}` });
  return h('span', null, p, ' ', fmtNum(j.rows_done), total ? ` / ${fmtNum(total)}` : '', ' rows');
}

function took(j) {
  if (!j.start_time) return '';
  return fmtDuration((j.end_time || Date.now()) - j.start_time);
}

async function jobList(ctx) {
  ctx.title('Batch scoring');
  const state = ctx.query.get('state') || '';
  const token = ctx.query.get('page_token') || '';
  const res = await v1('GET', '/score-jobs', { query: { page_token: token || undefined, max_results: 100 } });
  let jobs = res.jobs || [];
  if (state) jobs = jobs.filter((j) => j.state === state);
  const sel = h('select', { id: 'job-state' }, [['', 'Any state'], ['queued', 'Queued'], ['running', 'Running'], ['succeeded', 'Succeeded'], ['failed', 'Failed']]
    .map(([v, l]) => h('option', { value: v, selected: v === state }, l)));
  sel.onchange = () => ctx.setQuery({ state: sel.value });
  ctx.el.append(h('h1', null, 'Batch scoring'),
    h('p', { class: 'muted' }, 'Score jobs run a registered model over a dataset version or an artifact and write the predictions to the artifact store (', h('code', null, 'POST /api/v1/score-jobs'), ', ', h('code', null, 'kiln score'), ').'),
    h('div', { class: 'toolbar' }, h('label', { for: 'job-state' }, 'Show'), sel),
    table([
      { key: 'id', label: 'Job', render: (j) => link(`/ui/scoring/${j.id}`, j.id) },
      { key: 'state', label: 'State', render: (j) => badge(j.state) },
      { key: 'model', label: 'Model', render: (j) => h('code', null, j.model) },
      { key: 'input', label: 'Input', render: (j) => h('code', null, j.input) },
      { key: 'rows_done', label: 'Progress', numeric: true, render: progress },
      { key: 'creation_time', label: 'Submitted', render: (j) => fmtTime(j.creation_time) },
      { key: 'took', label: 'Took', sortable: false, render: took },
      { key: 'created_by', label: 'By' },
    ], jobs, { empty: 'No score jobs.' }),
    res.next_page_token ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ page_token: res.next_page_token }) }, 'Older jobs ›') : '',
    submitForm(ctx));
}

function submitForm(ctx) {
  const err = h('div', { role: 'alert' });
  const field = (id, label, placeholder, required = true) => [h('label', { for: id }, label), h('input', { id, name: id, placeholder, required })];
  const form = h('form', { class: 'stack', id: 'submit-job', onsubmit: async (e) => {
    e.preventDefault();
    err.replaceChildren();
    const body = { model: form.elements['job-model'].value.trim(), input: form.elements['job-input'].value.trim() };
    const out = form.elements['job-output'].value.trim();
    if (out) body.output = out;
    const keep = form.elements['job-keep'].value.split(',').map((x) => x.trim()).filter(Boolean);
    if (keep.length) body.keep = keep;
    const feats = form.elements['job-features'].value.split(',').map((x) => x.trim()).filter(Boolean);
    if (feats.length) body.features = feats;
    try {
      const j = await v1('POST', '/score-jobs', { body });
      toast(`Submitted job ${j.id}`);
      ctx.go(`/ui/scoring/${j.id}`);
    } catch (ex) { err.append(errorBox(ex)); }
  } },
  field('job-model', 'Model', 'models:/churn@champion'),
  field('job-input', 'Input', 'customers@3/part-0.parquet or mlflow-artifacts:/in.csv'),
  field('job-output', 'Output (optional)', 'scores/out.parquet', false),
  field('job-keep', 'Keep columns (optional, comma-separated)', 'customer_id', false),
  field('job-features', 'Feature columns (optional, comma-separated; default: the signature\'s or every column)', 'age,income', false),
  err, h('button', { type: 'submit' }, 'Submit job'));
  return section('Submit a score job', form);
}

async function jobPage(ctx, id) {
  const j = await v1('GET', `/score-jobs/${encodeURIComponent(id)}`);
  ctx.title(`Score job ${j.id}`);
  ctx.el.append(h('div', { class: 'crumbs' }, link('/ui/scoring', 'Batch scoring'), ' / '),
    h('h1', null, `Score job ${j.id} `, badge(j.state)),
    kv([
      ['Model', h('code', null, j.model)], ['Input', h('code', null, j.input)],
      ['Output', h('code', null, j.output_uri || j.output)],
      ['Progress', progress(j)], ['Submitted', fmtTime(j.creation_time)], ['Started', fmtTime(j.start_time)],
      ['Finished', fmtTime(j.end_time)], ['Took', took(j)], ['Attempts', String(j.attempts)], ['By', j.created_by],
      ['Kept columns', (j.keep || []).join(', ')],
      ['Error', j.error ? h('span', { class: 'error' }, j.error) : null],
    ]),
    j.state !== 'succeeded' || !j.output ? '' : h('p', null, h('a', { href: `/api/2.0/mlflow-artifacts/artifacts/${j.output.replace(/^mlflow-artifacts:\/?/, '').split('/').map(encodeURIComponent).join('/')}`, download: '' }, 'Download the predictions')));
  if (j.state === 'queued' || j.state === 'running') {
    // Follow the job until it ends (or the page is left).
    setTimeout(() => { if (!ctx.stale()) ctx.go(location.pathname + location.search, { replace: true }); }, 1000);
  }
}
