// Shared helpers of the Artemis k6 scenarios: configuration from the
// environment, instance fixtures, seeding, checks, options and summaries.
import http from 'k6/http';
import { check, fail } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const RATE = parseInt(__ENV.RATE || '500', 10);
export const DURATION = __ENV.DURATION || '30s';
export const SERVICES = parseInt(__ENV.SERVICES || '100', 10);
// Seeded instances default to five seconds of heartbeats at RATE, so each one
// is renewed every 5 s, as real clients do, and none expires mid-run.
export const INSTANCES = parseInt(__ENV.INSTANCES || String(Math.max(RATE * 5, SERVICES)), 10);
export const PREFIX = __ENV.PREFIX || 'k6';

const JSON_PARAMS = { headers: { 'Content-Type': 'application/json' } };

export function serviceId(s, svcPrefix = 'svc') {
  return `${PREFIX}-${svcPrefix}-${s}`;
}

// instance returns instance i with realistic fields (ip, url, healthCheckUrl,
// three metadata entries); instance i belongs to service i % SERVICES of the
// svcPrefix family (the seeded services by default).
export function instance(i, idPrefix = 'inst', svcPrefix = 'svc') {
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return {
    regionId: 'default', zoneId: 'default', serviceId: serviceId(i % SERVICES, svcPrefix),
    instanceId: `${PREFIX}-${idPrefix}-${i}`, machineName: `host-${i}`, ip, port: 8080, protocol: 'http',
    url: `http://${ip}:8080/api`, healthCheckUrl: `http://${ip}:8080/health`, status: 'up',
    metadata: { version: '1.4.2', env: 'prod', hostname: `host-${i}` },
  };
}

export function post(path, body, tags) {
  return http.post(`${BASE_URL}${path}`, JSON.stringify(body), Object.assign({ tags }, JSON_PARAMS));
}

export function get(path, tags) {
  return http.get(`${BASE_URL}${path}`, { tags });
}

// ok checks an answer is HTTP 200 with a success responseStatus.
export function ok(res, what) {
  return check(res, {
    [`${what}: HTTP 200`]: (r) => r.status === 200,
    [`${what}: success`]: (r) => r.status === 200 && r.json('responseStatus.errorCode') === 'success',
  });
}

// listed checks a service.json answer is a success for service id listing
// at least min instances: an unknown service answers success with none, so
// ok() alone cannot tell a read of the wrong service from a right one.
export function listed(res, what, id, min) {
  return ok(res, what) && check(res, {
    [`${what}: instances listed`]: (r) => r.status === 200 &&
      String(r.json('service.serviceId')).toLowerCase() === id.toLowerCase() &&
      (r.json('service.instances') || []).length >= min,
  });
}

// seed registers INSTANCES instances in batches of 1,000 (setup only).
export function seed() {
  for (let from = 0; from < INSTANCES; from += 1000) {
    const batch = [];
    for (let i = from; i < Math.min(from + 1000, INSTANCES); i++) batch.push(instance(i));
    if (!ok(post('/api/registry/register.json', { instances: batch }, { name: 'seed' }), 'seed')) {
      fail(`cannot seed instances ${from}..${from + batch.length} at ${BASE_URL}`);
    }
  }
  return { instances: INSTANCES, services: SERVICES };
}

// arrival returns an open-model constant-arrival-rate scenario.
export function arrival(exec, rate) {
  return {
    executor: 'constant-arrival-rate', exec, rate: Math.max(1, Math.round(rate)), timeUnit: '1s',
    duration: DURATION, preAllocatedVUs: Math.max(10, Math.ceil(rate / 50)), maxVUs: Math.max(50, rate),
  };
}

// thresholds: P99 under 10 ms and at most 1 % errors, or the run fails.
export const thresholds = {
  http_req_duration: ['p(99)<10'],
  http_req_failed: ['rate<0.01'],
  checks: ['rate>0.99'],
};

function fmt(v) {
  return typeof v === 'number' ? v.toFixed(3) : String(v);
}

// summary writes the end-of-test summary to results/k6-<name>-summary.json
// and a short text report to stdout.
export function summary(name) {
  return (data) => {
    const lines = [`k6 ${name} against ${BASE_URL}`];
    for (const [metric, m] of Object.entries(data.metrics || {})) {
      const vals = Object.entries(m.values || {}).map(([k, v]) => `${k}=${fmt(v)}`).join(' ');
      const th = m.thresholds ? Object.entries(m.thresholds).map(([k, t]) => `${k}:${t.ok ? 'ok' : 'FAILED'}`).join(' ') : '';
      lines.push(`  ${metric}: ${vals} ${th}`.trimEnd());
    }
    return {
      [`results/k6-${name}-summary.json`]: JSON.stringify(data, null, 2),
      stdout: lines.join('\n') + '\n',
    };
  };
}
