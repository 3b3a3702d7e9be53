// A deliberately broken script: the dry run must fail it (an error-rate
// threshold that is there but allows half the requests to fail).
// want: thresholds: no error-rate bound of 1 % or tighter
import { RATE, arrival, instance, ok, post, seed, summary } from '../../lib/artemis.js';

export const options = {
  scenarios: { broken: arrival('broken', RATE) },
  thresholds: { http_req_duration: ['p(99)<10'], http_req_failed: ['rate<0.5'], checks: ['rate>0.5'] },
};

export function setup() {
  return seed();
}

export function broken(data) {
  ok(post('/api/registry/heartbeat.json', { instances: [instance(__ITER % data.instances)] }, { name: 'broken' }), 'broken');
}

export const handleSummary = summary('broken');
