// Artemis console: one ES module, no dependencies, no build step.
//
// Pages (hash routes): #/services, #/service/<id>, #/cluster, #/operations.
// Everything is read from the node's public API on this origin; the only
// answer of the console's own is /console/api/summary.json. Text reaches
// the DOM through textContent only (never parsed as markup), and no element gets
// a style attribute: the Content-Security-Policy forbids inline styles, so
// sizes go through the CSSOM.

const ROW = 36; // px; the same as --row in app.css: virtual tables rely on it
const OVERSCAN = 12; // rows rendered above and below the visible ones
const REFRESH_MS = 5000; // polling of summary, leases, cluster and operations
const MAX_BACKOFF_MS = 30000; // WebSocket reconnect backoff ceiling
const TOKEN_KEY = 'artemis.adminToken';
const OPERATOR_KEY = 'artemis.operatorId';
const PULL_OUT = 'pullout'; // the operation name pull-out adds and pull-in removes

// ---------------------------------------------------------------- DOM

const $ = (sel, root = document) => root.querySelector(sel);

// el builds an element: props are attributes, except class, text, dataset
// and on<event> handlers; children are nodes or strings (as text).
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const k of kids.flat()) {
    if (k != null && k !== false) e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function badge(text, kind) {
  return el('span', {class: 'badge ' + kind, text});
}

function chips(obj) {
  const out = [];
  for (const [k, v] of Object.entries(obj || {})) out.push(el('span', {class: 'chip', title: `${k}=${v}`, text: `${k}=${v}`}));
  return out;
}

function num(n) {
  return el('span', {class: n ? '' : 'zero', text: Number(n || 0).toLocaleString('en-US')});
}

// fold folds ASCII letters as the registry compares keys.
const fold = (s) => String(s || '').replace(/[A-Z]/g, (c) => c.toLowerCase());

function duration(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function time(ms) {
  return ms ? new Date(ms).toLocaleString() : '';
}

function toast(text, error = false) {
  const box = $('#toast');
  const p = el('p', {class: error ? 'error' : '', text});
  box.append(p);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => p.remove(), error ? 10000 : 5000);
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status; // HTTP status; 0 when the node was not reached
    this.code = code; // responseStatus.errorCode, when the answer had one
  }
}

// call fetches a JSON answer of this node. A failed in-band responseStatus
// or an HTTP error throws ApiError. admin sends the admin token.
async function call(path, {method = 'GET', body, admin = false, signal} = {}) {
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (admin && auth.token) headers.Authorization = 'Bearer ' + auth.token;
  let res;
  try {
    res = await fetch(path, {
      method, headers, signal, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'cannot reach the node');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below from the status
  }
  const rs = data && data.responseStatus;
  if (!res.ok || (rs && rs.status === 'fail')) {
    throw new ApiError(res.status, rs ? rs.errorCode : '', rs ? rs.message : `HTTP ${res.status}`);
  }
  return {data, date: res.headers.get('Date')};
}

const post = (path, body, opts = {}) => call(path, {...opts, method: 'POST', body});

// mgmt reads a management endpoint: {available: false} when the node has no
// management API (404), else {available: true, data}.
async function mgmt(path, body, signal) {
  try {
    const {data} = await post('/api/management/' + path, body, {signal});
    return {available: true, data};
  } catch (e) {
    if (e.status === 404) return {available: false};
    throw e;
  }
}

// ---------------------------------------------------------------- admin token

const auth = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  get operator() { return sessionStorage.getItem(OPERATOR_KEY) || ''; },
  set(token, operator) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(OPERATOR_KEY, operator);
    renderAuth();
  },
  forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    renderAuth();
  },
};

function renderAuth() {
  const box = $('#auth');
  if (auth.token) {
    box.className = 'auth admin';
    box.dataset.mode = 'admin';
    $('#auth-text').textContent = `Admin token set for this tab (operator ${auth.operator}): pull-out and pull-in are enabled.`;
    $('#auth-button').textContent = 'Forget token';
  } else {
    box.className = 'auth readonly';
    box.dataset.mode = 'readonly';
    $('#auth-text').textContent = 'Read-only: no admin token in this tab. Pull-out and pull-in will ask for one.';
    $('#auth-button').textContent = 'Enter admin token';
  }
}

// askToken opens the token dialog; it resolves true once a token is stored.
function askToken(why, isError = false) {
  const d = $('#token-dialog');
  const whyEl = $('#token-why');
  whyEl.textContent = why || '';
  whyEl.className = 'why' + (isError ? ' error' : '');
  $('#token-operator').value = auth.operator;
  $('#token-input').value = '';
  return new Promise((resolve) => {
    d.returnValue = '';
    d.addEventListener('close', () => {
      const token = $('#token-input').value.trim();
      const operator = $('#token-operator').value.trim();
      $('#token-input').value = '';
      if (d.returnValue === 'save' && token && operator) {
        auth.set(token, operator);
        resolve(true);
      } else {
        resolve(false);
      }
    }, {once: true});
    d.showModal();
    (auth.operator ? $('#token-input') : $('#token-operator')).focus();
  });
}

// askReason opens the action dialog; it resolves to the reason, or null.
function askReason(title, what) {
  const d = $('#action-dialog');
  $('#action-title').textContent = title;
  $('#action-what').textContent = what;
  $('#action-reason').value = '';
  $('#action-confirm').textContent = title;
  return new Promise((resolve) => {
    d.returnValue = '';
    d.addEventListener('close', () => {
      const reason = $('#action-reason').value.trim();
      resolve(d.returnValue === 'confirm' && reason ? reason : null);
    }, {once: true});
    d.showModal();
    $('#action-reason').focus();
  });
}

// operate pulls an instance or a server out (pullOut) or in through the
// management API, asking for the token first when there is none and again
// when the node refuses it. kind is 'instance' (key: regionId, serviceId,
// instanceId) or 'server' (key: regionId, serverId). A pull-in removes each
// of operations. It resolves true when the node accepted every call.
async function operate(kind, key, pullOut, operations = [PULL_OUT]) {
  const verb = pullOut ? 'Pull out' : 'Pull in';
  const what = kind === 'instance' ? `instance ${key.instanceId} of ${key.serviceId}` : `server ${key.serverId}`;
  if (!auth.token && !await askToken(`${verb} ${what}: changing what clients discover needs the admin token.`)) return false;
  const reason = await askReason(`${verb} ${kind}`, pullOut
    ? `${verb} ${what}: discovery stops listing it (clients stop calling it) until it is pulled in.`
    : `${verb} ${what}: discovery lists it again.`);
  if (reason == null) return false;
  for (const operation of pullOut ? [PULL_OUT] : operations) {
    const body = {
      [kind + 'Key']: key, operation, operationComplete: !pullOut,
      operatorId: auth.operator, reason, extensions: JSON.stringify({reason}),
    };
    for (;;) {
      try {
        await post(`/api/management/operate-${kind}.json`, body, {admin: true});
        break;
      } catch (e) {
        if (e.status === 401 || e.status === 403 || e.code === 'no-permission') {
          const again = await askToken(`The node refused the admin token (${e.message}). Enter the node's admin token to ${verb.toLowerCase()} ${what}.`, true);
          if (!again) return false;
          body.operatorId = auth.operator;
          continue;
        }
        toast(e.status === 404
          ? `${verb} is not available: this node has no management API.`
          : `${verb} ${what} failed: ${e.message}`, true);
        return false;
      }
    }
  }
  toast(`${verb} ${what}: done.`);
  return true;
}

// ---------------------------------------------------------------- page scope

// scope owns a page's fetches, timers and sockets; destroy ends them all.
function scope() {
  const ac = new AbortController();
  const stops = [];
  return {
    signal: ac.signal,
    get alive() { return !ac.signal.aborted; },
    every(ms, fn) {
      const id = setInterval(() => { if (document.visibilityState === 'visible') fn(); }, ms);
      stops.push(() => clearInterval(id));
    },
    later(ms, fn) {
      const id = setTimeout(fn, ms);
      stops.push(() => clearTimeout(id));
      return id;
    },
    onDestroy(fn) { stops.push(fn); },
    destroy() {
      ac.abort();
      for (const f of stops) f();
    },
  };
}

// report shows a failed load in box, unless the page is gone (its fetches
// were aborted).
function report(s, box, e) {
  if (!s.alive || e.name === 'AbortError') return;
  box.replaceChildren(el('p', {class: 'error', role: 'alert', text: `Cannot load: ${e.message}`}));
}

// errorBox is where a page reports a failed refresh; cleared by the next
// successful one.
const errorBox = () => el('div', {class: 'load-error'});

// ---------------------------------------------------------------- virtual table

// VirtualTable renders only the rows in view (plus OVERSCAN) of a scrolling
// table with fixed-height rows, so 100,000 rows cost what 60 do. columns:
// {key, label, num, sort (sortable), narrow (hidden in a narrow window),
// cell(row) -> Node|string}. rowKey names a row across reloads, so that a
// redraw keeps the keyboard focus on the same control of the same row.
class VirtualTable {
  constructor({columns, label, sort, onSort, rowClass, rowKey}) {
    this.columns = columns;
    this.rowKey = rowKey || ((r) => r);
    this.rows = [];
    this.sort = sort;
    this.onSort = onSort;
    this.rowClass = rowClass;
    this.head = el('tr');
    for (const c of columns) {
      const th = el('th', {scope: 'col', class: [c.num ? 'num' : '', c.narrow ? 'hide-narrow' : ''].join(' ').trim() || null});
      if (c.sort && onSort) {
        th.append(el('button', {type: 'button', class: 'sort', text: c.label, onclick: () => this.toggleSort(c.key)}));
      } else {
        th.textContent = c.label;
      }
      c.th = th;
      this.head.append(th);
    }
    this.top = el('tr', {class: 'spacer', 'aria-hidden': 'true'}, el('td', {colspan: columns.length}));
    this.bottom = el('tr', {class: 'spacer', 'aria-hidden': 'true'}, el('td', {colspan: columns.length}));
    this.body = el('tbody');
    this.table = el('table', null, el('thead', null, this.head), this.body);
    this.root = el('div', {class: 'scroller', tabindex: '0', role: 'region', 'aria-label': label}, this.table);
    this.root.addEventListener('scroll', () => this.schedule(), {passive: true});
    this.frame = 0;
    this.first = -1;
    this.last = -1;
    this.markSort();
  }

  toggleSort(key) {
    const dir = this.sort && this.sort.key === key ? -this.sort.dir : 1;
    this.sort = {key, dir};
    this.markSort();
    this.onSort(this.sort);
  }

  markSort() {
    for (const c of this.columns) {
      if (!c.sort) continue;
      const on = this.sort && this.sort.key === c.key;
      c.th.setAttribute('aria-sort', on ? (this.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
    }
  }

  setRows(rows) {
    this.rows = rows;
    this.render(true);
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(false); });
  }

  // render draws the rows in view; force redraws them even when the window
  // did not move (the data changed).
  render(force) {
    const view = Math.max(this.root.clientHeight, window.innerHeight);
    const top = Math.max(0, this.root.scrollTop - ROW);
    let first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((top + view) / ROW) + OVERSCAN);
    if (first > last) first = last;
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const focus = this.focused();
    const frag = document.createDocumentFragment();
    frag.append(this.top);
    for (let i = first; i < last; i++) frag.append(this.row(this.rows[i]));
    frag.append(this.bottom);
    this.top.firstChild.style.height = first * ROW + 'px';
    this.bottom.firstChild.style.height = (this.rows.length - last) * ROW + 'px';
    this.body.replaceChildren(frag);
    if (focus) this.refocus(focus);
  }

  // focused names the control of a row that has the focus, if any.
  focused() {
    const a = document.activeElement;
    if (!a || a === this.body || !this.body.contains(a)) return null;
    const tr = a.closest('tr');
    return tr && tr.row ? {key: this.rowKey(tr.row), label: controlName(a)} : null;
  }

  // refocus puts the focus back on the control named by focused(), or on
  // the first control of its row when that one is gone.
  refocus({key, label}) {
    for (const tr of this.body.rows) {
      if (!tr.row || this.rowKey(tr.row) !== key) continue;
      const controls = [...tr.querySelectorAll('a, button')];
      const c = controls.find((e) => controlName(e) === label) || controls[0];
      if (c) c.focus({preventScroll: true});
      return;
    }
  }

  // refresh redraws the cells of the columns named by keys in the rows on
  // screen, in place (lease times that tick), leaving the rest, and the
  // focus, alone.
  refresh(keys) {
    const cols = this.columns.map((c, i) => [c, i]).filter(([c]) => keys.includes(c.key));
    for (const tr of this.body.rows) {
      if (!tr.row) continue;
      for (const [c, i] of cols) {
        const td = tr.cells[i];
        const v = c.cell(tr.row);
        if (v instanceof Node) td.replaceChildren(v);
        else td.textContent = v == null ? '' : v;
      }
    }
  }

  row(r) {
    const tr = document.createElement('tr');
    tr.row = r;
    if (this.rowClass) tr.className = this.rowClass(r) || '';
    for (const c of this.columns) {
      const td = document.createElement('td');
      if (c.num || c.narrow || c.class) td.className = [c.num ? 'num' : '', c.narrow ? 'hide-narrow' : '', c.class || ''].join(' ').trim();
      const v = c.cell(r);
      if (v instanceof Node) td.append(v);
      else if (Array.isArray(v)) td.append(...v);
      else if (v != null) td.textContent = v;
      tr.append(td);
    }
    return tr;
  }
}

const controlName = (e) => e.getAttribute('aria-label') || e.textContent;

function compareBy(key, dir) {
  return (a, b) => {
    const x = a[key];
    const y = b[key];
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return c * dir || a.serviceId.localeCompare(b.serviceId);
  };
}

// ---------------------------------------------------------------- node

let nodeInfo = null; // this node's nodeStatus.node, once read

async function loadNode() {
  try {
    const {data} = await call('/api/status/node.json');
    nodeInfo = data.nodeStatus.node;
    const z = nodeInfo.zone || {};
    $('#node').textContent = `region ${z.regionId} · zone ${z.zoneId} · ${nodeInfo.url} · ${data.nodeStatus.status}`;
  } catch {
    $('#node').textContent = 'node status unavailable';
  }
}

// ---------------------------------------------------------------- Services

function servicesPage(view) {
  const s = scope();
  const st = {all: [], sorted: [], q: '', sort: {key: 'serviceId', dir: 1}, first: true};
  const search = el('input', {type: 'search', id: 'service-search', placeholder: 'service id', autocomplete: 'off', spellcheck: 'false'});
  const count = el('span', {class: 'muted', id: 'service-count', 'aria-live': 'polite'});
  const totals = el('dl', {class: 'stats card', id: 'service-totals'});
  const err = errorBox();
  const table = new VirtualTable({
    label: 'Services',
    rowKey: (r) => r.serviceId,
    sort: st.sort,
    onSort: (sort) => { st.sort = sort; resort(); },
    columns: [
      {key: 'serviceId', label: 'Service', sort: true,
        cell: (r) => el('a', {href: '#/service/' + encodeURIComponent(r.serviceId), text: r.serviceId})},
      {key: 'up', label: 'Up', num: true, sort: true, cell: (r) => num(r.up)},
      {key: 'pulledOut', label: 'Pulled out', num: true, sort: true, cell: (r) => num(r.pulledOut)},
      {key: 'down', label: 'Down', num: true, sort: true, cell: (r) => num(r.down)},
      {key: 'expired', label: 'Expired', num: true, sort: true, narrow: true, cell: (r) => num(r.expired)},
      {key: 'total', label: 'Total', num: true, sort: true, cell: (r) => num(r.total)},
    ],
  });
  view.append(
    el('h1', {text: 'Services'}),
    totals,
    el('div', {class: 'toolbar', role: 'search'},
      el('label', {for: 'service-search'}, 'Search'), search, count),
    err, table.root,
  );
  search.addEventListener('input', () => { st.q = search.value.trim().toLowerCase(); filter(); });

  function resort() {
    st.sorted = st.all.slice().sort(compareBy(st.sort.key, st.sort.dir));
    filter();
  }

  function filter() {
    const q = st.q;
    const rows = q ? st.sorted.filter((r) => r.lower.includes(q)) : st.sorted;
    count.textContent = q
      ? `${rows.length.toLocaleString('en-US')} of ${st.all.length.toLocaleString('en-US')} services`
      : `${st.all.length.toLocaleString('en-US')} services`;
    table.setRows(rows);
  }

  async function load() {
    try {
      const {data} = await call('/console/api/summary.json', {signal: s.signal});
      for (const r of data.services) {
        r.lower = r.serviceId.toLowerCase();
        r.total = r.up + r.down + r.pulledOut;
      }
      st.all = data.services;
      totals.replaceChildren(
        stat('Services', data.services.length), stat('Instances', data.instances),
        stat('Expired leases held', data.expired), stat('Registry version', data.version, true),
        stat('Self-preservation', data.selfPreservationActive ? 'active' : 'idle'));
      resort();
      err.replaceChildren();
      if (st.first) {
        st.first = false;
        performance.mark('artemis:services-ready');
        document.body.dataset.ready = 'services';
        // Interactive: the list is painted and the main thread is back to
        // taking input (a task after the next frame).
        requestAnimationFrame(() => setTimeout(() => {
          performance.mark('artemis:services-interactive');
          document.body.dataset.interactive = 'services';
        }));
      }
    } catch (e) {
      report(s, err, e);
    }
  }

  load();
  s.every(REFRESH_MS, load);
  return s;
}

function stat(label, value, raw = false) {
  const v = typeof value === 'number' && !raw ? value.toLocaleString('en-US') : String(value);
  return el('div', null, el('dt', {text: label}), el('dd', {text: v}));
}

// ---------------------------------------------------------------- Service

// servicePage shows one service's instances: every registered one (from
// leases.json) merged with what discovery shows (service.json) and the
// management operations; live over /ws/discovery/instance-change.
function servicePage(view, [id = '']) {
  const s = scope();
  const st = {
    rows: new Map(), // folded instanceId -> {inst, lease, shown}
    ops: {available: null, inst: new Map(), servers: new Map()},
    offset: 0, // node clock - this clock, ms (when over 2 s)
    loading: null, // the load in flight
    again: false, // load again once the one in flight ends
    pending: [], // changes that arrived during a load
    syncedAfterOpen: false,
  };
  const live = el('span', {id: 'live', class: 'badge other', dataset: {state: 'connecting'}, text: 'connecting'});
  const counts = el('p', {class: 'muted', id: 'instance-count'});
  const mgmtNote = el('p', {class: 'unavailable', id: 'mgmt-note', hidden: true});
  const err = errorBox();
  const rules = el('div', {class: 'rules', id: 'route-rules'});
  const logic = el('div', {id: 'logic-instances'});
  const table = new VirtualTable({
    label: `Instances of ${id}`,
    rowKey: (r) => fold(r.inst.instanceId),
    columns: [
      {key: 'instanceId', label: 'Instance', cell: (r) => el('span', {class: 'mono', text: r.inst.instanceId})},
      {key: 'status', label: 'Status', cell: (r) => statusBadge(r.inst.status)},
      {key: 'zone', label: 'Zone', narrow: true, cell: (r) => r.inst.zoneId || ''},
      {key: 'group', label: 'Group', narrow: true, cell: (r) => r.inst.groupId || ''},
      {key: 'addr', label: 'IP:port', cell: (r) => el('span', {class: 'mono', text: `${r.inst.ip || '?'}:${r.inst.port ?? ''}`})},
      {key: 'meta', label: 'Metadata', class: 'meta', narrow: true, cell: (r) => chips(r.inst.metadata)},
      {key: 'age', label: 'Lease age', num: true, narrow: true, cell: (r) => r.lease ? duration(now() - r.lease.creationTime) : '…'},
      {key: 'expiry', label: 'Expires in', num: true, cell: expiry},
      {key: 'mgmt', label: 'Management', cell: management},
      {key: 'act', label: 'Actions', cell: actions},
    ],
  });
  view.append(
    el('p', null, el('a', {href: '#/services', text: '← Services'})),
    el('h1', null, 'Service ', el('span', {class: 'mono', text: id}), ' ', live),
    counts, mgmtNote, err, table.root,
    el('h2', {text: 'Route rules'}), rules,
    el('h2', {text: 'Logical instances'}), logic,
  );

  const now = () => Date.now() + st.offset;

  function statusBadge(status) {
    const v = fold(status) || 'unknown';
    return badge(v, v === 'up' ? 'up' : v === 'down' || v === 'unhealthy' ? 'down' : 'other');
  }

  function expiry(r) {
    if (!r.lease) return '…';
    const left = r.lease.evitionTime - now();
    if (left < 0) return el('span', {class: 'expired', title: 'expired; kept by self-preservation', text: `expired ${duration(left)} ago`});
    return el('span', {class: left < r.lease.ttl / 4 ? 'expiring' : '', text: duration(left)});
  }

  // why returns the reasons the instance is out of discovery.
  function why(r) {
    const out = [];
    const ops = st.ops.inst.get(fold(r.inst.instanceId));
    if (ops && ops.length) out.push({text: `pulled out (${ops.join(', ')})`, ops});
    const sops = st.ops.servers.get(r.inst.ip || '');
    if (sops && sops.length) out.push({text: `server ${r.inst.ip} pulled out`, server: sops});
    if (!r.shown && !out.length && r.lease) out.push({text: 'hidden from discovery'});
    return out;
  }

  function management(r) {
    const w = why(r);
    if (!w.length) return badge('in service', 'up');
    return el('span', null, ...w.map((x) => badge(x.text, 'out')));
  }

  function actions(r) {
    if (st.ops.available !== true) return '';
    const inst = r.inst;
    const key = {regionId: inst.regionId, serviceId: inst.serviceId || id, instanceId: inst.instanceId};
    const w = why(r);
    const own = w.find((x) => x.ops);
    const srv = w.find((x) => x.server);
    const box = el('span');
    if (own) {
      box.append(el('button', {type: 'button', class: 'pull-in', 'aria-label': `Pull in ${inst.instanceId}`, text: 'Pull in',
        onclick: () => operate('instance', key, false, own.ops).then((ok) => ok && load())}));
    } else {
      box.append(el('button', {type: 'button', class: 'pull-out danger', 'aria-label': `Pull out ${inst.instanceId}`, text: 'Pull out',
        onclick: () => operate('instance', key, true).then((ok) => ok && load())}));
    }
    if (srv) {
      box.append(' ', el('button', {type: 'button', 'aria-label': `Pull in server ${inst.ip}`, text: 'Pull in server',
        onclick: () => operate('server', {regionId: inst.regionId, serverId: inst.ip}, false, srv.server).then((ok) => ok && load())}));
    }
    return box;
  }

  function render() {
    const rows = [...st.rows.values()].sort((a, b) => (a.inst.instanceId < b.inst.instanceId ? -1 : a.inst.instanceId > b.inst.instanceId ? 1 : 0));
    let up = 0; let down = 0; let out = 0;
    for (const r of rows) {
      if (why(r).length) out++;
      else if (fold(r.inst.status) === 'up') up++;
      else down++;
    }
    counts.textContent = `${rows.length} instances: ${up} up, ${out} pulled out, ${down} down`;
    table.setRows(rows);
  }

  function renderRules(service) {
    const list = service.routeRules || [];
    if (!list.length) {
      rules.replaceChildren(el('p', {class: 'muted', text: 'No route rules.'}));
    } else {
      rules.replaceChildren(...list.map(ruleCard));
    }
    const li = service.logicInstances || [];
    logic.replaceChildren(li.length
      ? plainTable(['Instance', 'IP:port', 'URL', 'Group', 'Status'],
        li.map((i) => [i.instanceId, `${i.ip || '?'}:${i.port ?? ''}`, i.url || '', i.groupId || '', i.status || '']))
      : el('p', {class: 'muted', text: 'No logical instances.'}));
  }

  function ruleCard(rule) {
    const canary = rule.routeId === 'canary-route-rule';
    return el('section', {class: 'card rule', 'aria-label': `Route rule ${rule.routeId}`},
      el('h3', null, canary ? badge('canary', 'warn') : null, ' ', el('span', {class: 'mono', text: rule.routeId}),
        el('span', {class: 'muted', text: ` · ${rule.strategy || ''}`})),
      plainTable(['Group', 'Weight', 'Members', canary ? 'Canary instances' : 'Tags'],
        (rule.groups || []).map((g) => [
          el('span', {class: 'mono', text: g.groupKey}), String(g.weight ?? ''),
          (g.instanceIds || []).map((x) => el('span', {class: 'chip', text: x})),
          canary ? (g.instances || []).map((i) => el('span', {class: 'chip', text: `${i.instanceId} ${i.ip || ''}`})) : chips(g.metadata),
        ])));
  }

  // load reads everything again; changes pushed meanwhile are applied after.
  function load() {
    if (st.loading) {
      st.again = true; // what is in flight may predate the reason to load
      return st.loading;
    }
    const startedOpen = live.dataset.state === 'open';
    st.loading = (async () => {
      try {
        const enc = encodeURIComponent(id);
        const [svc, leases, iops, sops] = await Promise.all([
          call(`/api/discovery/service.json?serviceId=${enc}`, {signal: s.signal}),
          call(`/api/status/leases.json?serviceIds=${enc}`, {signal: s.signal}),
          mgmt('all-instance-operations.json', {regionId: ''}, s.signal),
          mgmt('all-server-operations.json', {regionId: ''}, s.signal),
        ]);
        const off = leases.date ? Date.parse(leases.date) - Date.now() : 0;
        st.offset = Math.abs(off) > 2000 ? off : 0;
        const rows = new Map();
        for (const l of Object.values(leases.data.leases || {})[0] || []) {
          rows.set(fold(l.instance.instanceId), {inst: l.instance, lease: l, shown: false});
        }
        const service = svc.data.service || {};
        for (const inst of service.instances || []) {
          const k = fold(inst.instanceId);
          const r = rows.get(k);
          rows.set(k, {inst, lease: r ? r.lease : null, shown: true});
        }
        readOps(iops, sops);
        st.rows = rows;
        renderRules(service);
        for (const ch of st.pending.splice(0)) apply(ch);
        render();
        err.replaceChildren();
        if (startedOpen && !st.syncedAfterOpen) {
          st.syncedAfterOpen = true;
          live.dataset.synced = 'true';
        }
        document.body.dataset.ready = 'service';
      } catch (e) {
        report(s, err, e);
      } finally {
        st.loading = null;
        if (st.again && s.alive) {
          st.again = false;
          load();
        }
      }
    })();
    return st.loading;
  }

  function readOps(iops, sops) {
    const o = {available: iops.available && sops.available, inst: new Map(), servers: new Map()};
    if (iops.available) {
      for (const x of iops.data.allInstanceOperations || []) {
        const k = x.instanceKey || {};
        if (fold(k.serviceId) === fold(id) && (x.operations || []).length) o.inst.set(fold(k.instanceId), x.operations);
      }
    }
    if (sops.available) {
      for (const x of sops.data.allServerOperations || []) {
        if ((x.operations || []).length) o.servers.set((x.serverKey || {}).serverId, x.operations);
      }
    }
    st.ops = o;
    mgmtNote.hidden = o.available;
    mgmtNote.textContent = o.available ? '' : 'Management is not available on this node: pull-out state and actions are off.';
  }

  let reconcile = 0;
  function apply(ch) {
    const inst = ch.instance || {};
    if (ch.changeType === 'reload') {
      load();
      return;
    }
    const k = fold(inst.instanceId);
    if (ch.changeType === 'new' || ch.changeType === 'change') {
      const r = st.rows.get(k);
      st.rows.set(k, {inst, lease: r ? r.lease : null, shown: true});
    } else if (ch.changeType === 'delete') {
      st.rows.delete(k); // a pull-out also deletes: the reconciling load below shows it again, pulled out
    }
    if (!reconcile) reconcile = s.later(300, () => { reconcile = 0; load(); });
  }

  let frame = 0;
  function onChange(ch) {
    if (st.loading) {
      st.pending.push(ch);
      return;
    }
    apply(ch);
    // A burst of changes is drawn once per frame.
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; if (s.alive) render(); });
  }

  function onState(state, delay) {
    live.dataset.state = state;
    if (state === 'open') {
      live.className = 'badge live';
      live.textContent = 'live';
      live.title = 'instance changes are pushed to this page';
    } else if (state === 'retry') {
      live.className = 'badge warn';
      live.textContent = `reconnecting in ${Math.ceil(delay / 1000)}s`;
      live.title = 'the change stream closed; the page reloads when it is back';
    } else {
      live.className = 'badge other';
      live.textContent = 'connecting';
    }
  }

  const sock = liveSocket(id, {
    onState,
    // (re)subscribed: read everything, so changes missed while closed are not lost
    onOpen: load,
    onChange,
  });
  s.onDestroy(() => sock.stop());
  load();
  s.every(REFRESH_MS, load);
  s.every(1000, () => table.refresh(['age', 'expiry'])); // lease ages and expiries tick
  return s;
}

// liveSocket follows serviceId on /ws/discovery/instance-change and
// reconnects with a jittered exponential backoff (0.5 s doubling up to 30 s,
// reset once a session opens).
function liveSocket(serviceId, {onState, onOpen, onChange}) {
  let ws = null;
  let attempt = 0;
  let timer = 0;
  let stopped = false;
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/discovery/instance-change';

  function connect() {
    onState('connecting');
    try {
      ws = new WebSocket(url);
    } catch {
      retry();
      return;
    }
    ws.onopen = () => {
      attempt = 0;
      ws.send(JSON.stringify({serviceId}));
      onState('open');
      onOpen();
    };
    ws.onmessage = (ev) => {
      let ch;
      try {
        ch = JSON.parse(ev.data);
      } catch {
        return;
      }
      onChange(ch);
    };
    ws.onclose = () => {
      ws = null;
      if (!stopped) retry();
    };
  }

  function retry() {
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt++);
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    onState('retry', delay);
    timer = setTimeout(connect, delay);
  }

  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (ws) ws.close(1000);
    },
  };
}

// plainTable renders a small table (no virtualisation).
function plainTable(headers, rows) {
  return el('div', {class: 'scroller short'},
    el('table', null,
      el('thead', null, el('tr', null, headers.map((h) => el('th', {scope: 'col', text: h})))),
      el('tbody', null, rows.map((cells) => el('tr', null, cells.map((c) => el('td', null, c)))))));
}

// ---------------------------------------------------------------- Cluster

const NODE_FIELDS = new Set(['node', 'status', 'canServiceRegistry', 'canServiceDiscovery',
  'allowRegistryFromOtherZone', 'allowDiscoveryFromOtherZone']);

function clusterPage(view) {
  const s = scope();
  const mine = el('dl', {class: 'stats card', id: 'this-node'});
  const nodes = el('div', {id: 'nodes'});
  const heading = el('p', {class: 'muted', id: 'node-count'});
  view.append(el('h1', {text: 'Cluster'}), heading, nodes, el('h2', {text: 'This node'}), mine);

  async function load() {
    try {
      const [cluster, node, sum, ws, repl] = await Promise.all([
        call('/api/status/cluster.json', {signal: s.signal}),
        call('/api/status/node.json', {signal: s.signal}),
        call('/console/api/summary.json', {signal: s.signal}),
        call('/api/status/websocket.json', {signal: s.signal}).catch(() => null),
        call('/console/api/replication.json', {signal: s.signal}).catch(() => null),
      ]);
      const self = node.data.nodeStatus.node.url;
      const list = cluster.data.nodesStatus || [];
      const peers = new Map(((repl && repl.data.peers) || []).map((p) => [p.url, p]));
      const count = cluster.data.nodeCount;
      heading.textContent = `${count} ${count === 1 ? 'node' : 'nodes'} configured, ${list.filter((n) => n.status === 'up').length} up`;
      nodes.replaceChildren(plainTable(['Node', 'Region / zone', 'Status', 'Serves', 'Registry version', 'Replication to it'],
        list.map((n) => nodeRow(n, self, sum.data, peers.get((n.node && n.node.url) || '')))));
      if (repl && repl.data.dropped) heading.append(el('span', {class: 'error', text: ` · ${repl.data.dropped} operations not replicated (outbox full)`}));
      const sessions = ws ? Object.values(ws.data.connections || {}).reduce((a, b) => a + b, 0) : '?';
      mine.replaceChildren(
        stat('Registry version', sum.data.version, true), stat('Services', sum.data.services.length),
        stat('Instances', sum.data.instances), stat('Expired leases held', sum.data.expired),
        stat('Self-preservation', sum.data.selfPreservationActive ? 'active' : 'idle'),
        stat('Change log entries', sum.data.changeLogEntries), stat('WebSocket sessions', sessions));
      document.body.dataset.ready = 'cluster';
    } catch (e) {
      report(s, nodes, e);
    }
  }

  load();
  s.every(REFRESH_MS, load);
  return s;
}

function nodeRow(n, self, sum, peer) {
  const url = (n.node && n.node.url) || '';
  const z = (n.node && n.node.zone) || {};
  const isSelf = url === self;
  const status = n.status || 'unknown';
  const extra = Object.entries(n).filter(([k]) => !NODE_FIELDS.has(k) && k !== 'version' && k !== 'registryVersion');
  const version = isSelf ? sum.version : n.registryVersion ?? n.version;
  return [
    el('span', null, el('a', {href: url + '/console/', text: url}), isSelf ? el('span', {class: 'muted', text: ' (this node)'}) : null),
    `${z.regionId || ''} / ${z.zoneId || ''}`,
    badge(status, status === 'up' ? 'up' : status === 'starting' ? 'warn' : status === 'down' ? 'down' : 'other'),
    [n.canServiceRegistry ? 'registry' : null, n.canServiceDiscovery ? 'discovery' : null].filter(Boolean).join(', ') || 'none',
    version == null ? el('span', {class: 'muted', text: 'not reported'}) : String(version),
    replication(peer, extra),
  ];
}

// replication shows this node's replication to a peer and any fields of
// its cluster.json entry beyond the contract's.
function replication(peer, extra) {
  const out = extra.map(([k, v]) => el('span', {class: 'chip', text: `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`}));
  if (peer) {
    out.push(el('span', {class: 'chip', title: 'batches waiting', text: `queue ${peer.queue}`}),
      el('span', {class: 'chip', title: 'the last batch: operation to the peer\'s answer', text: `lag ${peer.lagMs.toFixed(1)} ms`}),
      el('span', {class: 'chip', text: `sent ${peer.batches.toLocaleString('en-US')} batches, ${peer.instances.toLocaleString('en-US')} instances`}));
    if (peer.failures || peer.retries) out.push(el('span', {class: 'chip error', text: `${peer.failures} dropped, ${peer.retries} retried`}));
    if (peer.skipped) out.push(el('span', {class: 'chip', text: `${peer.skipped} skipped while not up`}));
    if (!peer.lastSeen) out.push(el('span', {class: 'chip error', text: 'never reached'}));
    if (peer.error) out.push(el('span', {class: 'chip error', title: peer.error, text: peer.error}));
  }
  return out.length ? out : el('span', {class: 'muted', text: '—'});
}

// ---------------------------------------------------------------- Operations

const LOGS = {
  instance: {path: 'log/instance-operation-logs.json', target: (r) => `${r.serviceId} / ${r.instanceId}`},
  server: {path: 'log/server-operation-logs.json', target: (r) => r.serverId},
  zone: {path: 'log/zone-operation-logs.json', target: (r) => `${r.serviceId} / zone ${r.zoneId}`},
  group: {path: 'log/group-operation-logs.json', target: (r) => `group ${r.groupId}`},
};

function operationsPage(view) {
  const s = scope();
  const boxes = {
    instances: el('div', {id: 'ops-instances'}), servers: el('div', {id: 'ops-servers'}),
    zones: el('div', {id: 'ops-zones'}), groups: el('div', {id: 'ops-groups'}),
  };
  const ip = el('input', {id: 'server-ip', required: true, placeholder: '10.0.0.1', autocomplete: 'off', spellcheck: 'false'});
  const serverForm = el('form', {class: 'toolbar', 'aria-label': 'Pull out a server'},
    el('label', {for: 'server-ip'}, 'Server IP'), ip,
    el('button', {type: 'submit', class: 'danger', text: 'Pull out server…'}));
  serverForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const regionId = (nodeInfo && nodeInfo.zone && nodeInfo.zone.regionId) || '';
    if (await operate('server', {regionId, serverId: ip.value.trim()}, true)) load();
  });

  const kind = el('select', {id: 'log-kind'},
    ...Object.keys(LOGS).map((k) => el('option', {value: k, text: k + 's'})));
  const fService = el('input', {id: 'log-service', placeholder: 'any', autocomplete: 'off'});
  const fServer = el('input', {id: 'log-server', placeholder: 'any', autocomplete: 'off'});
  const fOperator = el('input', {id: 'log-operator', placeholder: 'any', autocomplete: 'off'});
  const fOperation = el('input', {id: 'log-operation', placeholder: 'any', autocomplete: 'off'});
  const logForm = el('form', {class: 'toolbar', 'aria-label': 'Operation log filters'},
    el('label', {for: 'log-kind'}, 'Kind'), kind,
    el('label', {for: 'log-service'}, 'Service'), fService,
    el('label', {for: 'log-server'}, 'Server IP'), fServer,
    el('label', {for: 'log-operator'}, 'Operator'), fOperator,
    el('label', {for: 'log-operation'}, 'Operation'), fOperation,
    el('button', {type: 'submit', text: 'Show'}));
  const logBox = el('div', {id: 'ops-log'});
  logForm.addEventListener('submit', (ev) => { ev.preventDefault(); loadLog(); });

  view.append(
    el('h1', {text: 'Operations'}),
    el('h2', {text: 'Pulled out now'}),
    el('h3', {text: 'Instances'}), boxes.instances,
    el('h3', {text: 'Servers'}), boxes.servers, serverForm,
    el('h3', {text: 'Zones'}), boxes.zones,
    el('h3', {text: 'Groups'}), boxes.groups,
    el('h2', {text: 'Operation log'}), logForm, logBox,
  );

  const none = (text) => el('p', {class: 'muted', text});
  const unavailable = () => el('p', {class: 'unavailable', text: 'Not available on this node.'});

  async function section(box, path, field, rowsOf) {
    try {
      const r = await mgmt(path, {regionId: ''}, s.signal);
      if (!r.available) {
        box.replaceChildren(unavailable());
        return;
      }
      const list = (r.data[field] || []).filter((x) => (x.operations || []).length);
      box.replaceChildren(list.length ? rowsOf(list) : none('Nothing pulled out.'));
    } catch (e) {
      report(s, box, e);
    }
  }

  function load() {
    return Promise.all([
      section(boxes.instances, 'all-instance-operations.json', 'allInstanceOperations', (list) =>
        plainTable(['Service', 'Instance', 'Region', 'Operations', ''], list.map((x) => {
          const k = x.instanceKey || {};
          return [el('a', {href: '#/service/' + encodeURIComponent(k.serviceId || ''), text: k.serviceId}),
            el('span', {class: 'mono', text: k.instanceId}), k.regionId, x.operations.join(', '),
            el('button', {type: 'button', 'aria-label': `Pull in ${k.instanceId}`, text: 'Pull in',
              onclick: () => operate('instance', k, false, x.operations).then((ok) => ok && load())})];
        }))),
      section(boxes.servers, 'all-server-operations.json', 'allServerOperations', (list) =>
        plainTable(['Server', 'Region', 'Operations', ''], list.map((x) => {
          const k = x.serverKey || {};
          return [el('span', {class: 'mono', text: k.serverId}), k.regionId, x.operations.join(', '),
            el('button', {type: 'button', 'aria-label': `Pull in server ${k.serverId}`, text: 'Pull in',
              onclick: () => operate('server', k, false, x.operations).then((ok) => ok && load())})];
        }))),
      section(boxes.zones, 'zone/get-all-zone-operations.json', 'allZoneOperations', (list) =>
        plainTable(['Service', 'Zone', 'Region', 'Operations'], list.map((x) => {
          const k = x.zoneKey || {};
          return [k.serviceId, k.zoneId, k.regionId, x.operations.join(', ')];
        }))),
      section(boxes.groups, 'group/get-all-group-operations.json', 'allGroupOperations', (list) =>
        plainTable(['Group', 'Operations'], list.map((x) => [String(x.groupId), x.operations.join(', ')]))),
    ]).then(() => { document.body.dataset.ready = 'operations'; });
  }

  const logTable = new VirtualTable({
    label: 'Operation log',
    columns: [
      {key: 'time', label: 'Time', cell: (r) => time(r.createTime)},
      {key: 'operation', label: 'Operation', cell: (r) => r.operation},
      {key: 'complete', label: 'Done', cell: (r) => (r.complete ? badge('pull-in', 'up') : badge('pull-out', 'out'))},
      {key: 'target', label: 'Target', cell: (r) => el('span', {class: 'mono', text: r.target})},
      {key: 'operatorId', label: 'Operator', cell: (r) => r.operatorId},
      {key: 'reason', label: 'Reason', narrow: true, cell: (r) => r.reasonText},
    ],
  });

  async function loadLog() {
    const k = kind.value;
    const body = {};
    if (fService.value.trim() && (k === 'instance' || k === 'zone')) body.serviceId = fService.value.trim();
    if (fServer.value.trim() && k === 'server') body.serverId = fServer.value.trim();
    if (fOperator.value.trim()) body.operatorId = fOperator.value.trim();
    if (fOperation.value.trim()) body.operation = fOperation.value.trim();
    try {
      const r = await mgmt(LOGS[k].path, body, s.signal);
      if (!r.available) {
        logBox.replaceChildren(unavailable());
        return;
      }
      const rows = (r.data.logs || []).slice().reverse(); // newest first
      for (const x of rows) {
        x.target = LOGS[k].target(x);
        x.reasonText = x.reason || reasonOf(x.extensions);
      }
      logTable.setRows(rows);
      const count = rows.length === 1 ? '1 entry' : `${rows.length.toLocaleString('en-US')} entries, newest first`;
      logBox.replaceChildren(el('p', {class: 'muted', text: count}), logTable.root);
    } catch (e) {
      report(s, logBox, e);
    }
  }

  load();
  loadLog();
  s.every(REFRESH_MS, load);
  return s;
}

function reasonOf(extensions) {
  if (!extensions) return '';
  try {
    const x = JSON.parse(extensions);
    return (x && x.reason) || '';
  } catch {
    return String(extensions);
  }
}

// ---------------------------------------------------------------- router

const pages = {services: servicesPage, service: servicePage, cluster: clusterPage, operations: operationsPage};
let current = null;

function route(focus) {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  let name = parts[0];
  if (!pages[name] || (name === 'service' && !parts[1])) {
    name = 'services';
    history.replaceState(null, '', '#/services');
  }
  if (current) current.destroy();
  const view = $('#view');
  view.replaceChildren();
  delete document.body.dataset.ready;
  delete document.body.dataset.interactive;
  for (const a of document.querySelectorAll('.top nav a')) {
    if (a.dataset.page === name || (name === 'service' && a.dataset.page === 'services')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const args = parts.slice(1).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  document.title = (name === 'service' ? args[0] : name[0].toUpperCase() + name.slice(1)) + ' · Artemis console';
  current = pages[name](view, args);
  if (focus) view.focus({preventScroll: true});
}

function init() {
  renderAuth();
  $('#auth-button').addEventListener('click', () => {
    if (auth.token) auth.forget();
    else askToken('Enter the admin token to pull instances and servers out and in.');
  });
  $('#token-cancel').addEventListener('click', () => $('#token-dialog').close('cancel'));
  $('#action-cancel').addEventListener('click', () => $('#action-dialog').close('cancel'));
  window.addEventListener('hashchange', () => route(true));
  loadNode();
  route(false);
}

init();
