// Dry run of k6 scripts under Node.js, for machines without k6 (CI).
//
//   BASE_URL=http://127.0.0.1:PORT node --import ./k6/dryrun/register-hooks.mjs k6/dryrun/run.mjs [script.js...]
//
// For each script it checks the options (open-model constant-arrival-rate
// scenarios whose exec functions exist, a P99 threshold of 10 ms or tighter
// and an error-rate bound of 1 % or tighter), runs setup(), a few iterations
// of every scenario against the live server, teardown() and handleSummary().
// It fails on a wrong path, a
// rejected body (any HTTP status >= 400 or transport error), a failed check,
// or a missing summary file. Summaries go to RESULTS_DIR (default: a temp dir).
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { state } from './state.mjs';

const ITERATIONS = parseInt(process.env.DRYRUN_ITERATIONS || '5', 10);
const resultsDir = process.env.RESULTS_DIR || mkdtempSync(join(tmpdir(), 'k6-dryrun-'));
mkdirSync(resultsDir, { recursive: true });

function problemsWithOptions(mod) {
  const p = [];
  const sc = mod.options && mod.options.scenarios;
  if (!sc || Object.keys(sc).length === 0) p.push('options.scenarios is empty');
  for (const [name, s] of Object.entries(sc || {})) {
    if (s.executor !== 'constant-arrival-rate') p.push(`scenario ${name}: executor ${s.executor}, want constant-arrival-rate`);
    if (!(s.rate > 0) || !s.timeUnit || !s.duration || !(s.preAllocatedVUs > 0)) p.push(`scenario ${name}: rate, timeUnit, duration and preAllocatedVUs are required`);
    const fn = s.exec || 'default';
    if (typeof mod[fn] !== 'function') p.push(`scenario ${name}: exec function ${fn} is not exported`);
  }
  const th = (mod.options && mod.options.thresholds) || {};
  if (!bounded(th.http_req_duration, /^p\(99\)\s*<=?\s*([\d.]+)$/, (v) => v <= 10)) {
    p.push(`thresholds: no http_req_duration p(99)<10 or tighter (got ${JSON.stringify(th.http_req_duration)})`);
  }
  if (!bounded(th.http_req_failed, /^rate\s*<=?\s*([\d.]+)$/, (v) => v <= 0.01) &&
      !bounded(th.checks, /^rate\s*>=?\s*([\d.]+)$/, (v) => v >= 0.99)) {
    p.push(`thresholds: no error-rate bound of 1 % or tighter (http_req_failed rate<0.01 or checks rate>0.99; got ${JSON.stringify({ http_req_failed: th.http_req_failed, checks: th.checks })})`);
  }
  if (typeof mod.handleSummary !== 'function') p.push('handleSummary is not exported');
  return p;
}

// bounded reports whether a metric's thresholds (strings, or objects with a
// threshold field, as k6 takes them) include one matching re whose number
// satisfies ok.
function bounded(list, re, ok) {
  return (Array.isArray(list) ? list : []).some((t) => {
    const m = re.exec(String(typeof t === 'object' && t !== null ? t.threshold : t).trim());
    return m !== null && ok(parseFloat(m[1]));
  });
}

function summaryData() {
  const http = state.requests.filter((r) => !r.ws); // a WebSocket session's duration is not a request's
  const d = http.map((r) => r.duration).sort((a, b) => a - b);
  const q = (x) => (d.length ? d[Math.min(d.length - 1, Math.ceil(x * d.length) - 1)] : 0);
  const failed = http.filter((r) => r.status === 0 || r.status >= 400).length;
  const passes = state.checks.filter((c) => c.ok).length;
  return {
    metrics: {
      http_reqs: { type: 'counter', values: { count: d.length } },
      http_req_duration: { type: 'trend', values: { 'p(50)': q(0.5), 'p(99)': q(0.99), max: d[d.length - 1] || 0 }, thresholds: { 'p(99)<10': { ok: true } } },
      http_req_failed: { type: 'rate', values: { rate: d.length ? failed / d.length : 0 } },
      checks: { type: 'rate', values: { rate: state.checks.length ? passes / state.checks.length : 1, passes, fails: state.checks.length - passes } },
    },
    root_group: { name: '', checks: [] },
    options: {},
    state: { testRunDurationMs: 0 },
  };
}

async function dryRun(script) {
  state.reset();
  const mod = await import(pathToFileURL(resolve(script)).href);
  const problems = problemsWithOptions(mod);
  if (problems.length) return problems;
  const data = typeof mod.setup === 'function' ? mod.setup() : undefined;
  for (const [name, s] of Object.entries(mod.options.scenarios)) {
    const fn = mod[s.exec || 'default'];
    for (let i = 0; i < ITERATIONS; i++) {
      state.scenario = { name, iterationInTest: i };
      globalThis.__ITER = i;
      fn(data);
    }
  }
  if (typeof mod.teardown === 'function') mod.teardown(data);
  const out = mod.handleSummary(summaryData());
  const files = Object.keys(out || {}).filter((k) => k.startsWith('results/') && k.endsWith('.json'));
  if (files.length === 0) problems.push('handleSummary wrote no results/*.json file');
  for (const f of files) {
    JSON.parse(out[f]);
    writeFileSync(join(resultsDir, basename(f)), out[f]);
  }
  for (const r of state.requests) {
    if (r.status === 0 || r.status >= 400) problems.push(`${r.method} ${r.url}: ${r.status || r.error}`);
  }
  for (const c of state.checks) {
    if (!c.ok) problems.push(`check failed: ${c.name}`);
  }
  if (state.requests.length === 0) problems.push('no request was sent');
  return [...new Set(problems)];
}

let scripts = process.argv.slice(2);
if (scripts.length === 0) {
  const dir = new URL('..', import.meta.url).pathname;
  scripts = readdirSync(dir).filter((f) => f.endsWith('.js')).sort().map((f) => join(dir, f));
}
let passed = 0;
let failed = 0;
for (const script of scripts) {
  let problems;
  try {
    problems = await dryRun(script);
  } catch (e) {
    problems = [`threw: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`];
  }
  if (problems.length) {
    failed++;
    console.log(`FAIL ${basename(script)}`);
    for (const p of problems.slice(0, 10)) console.log(`  - ${p}`);
  } else {
    passed++;
    console.log(`ok   ${basename(script)} (${state.requests.length} requests, ${state.checks.length} checks)`);
  }
}
console.log(`dryrun: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
