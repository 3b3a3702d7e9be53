// The mixed workload: 80 % heartbeats, 15 % service reads, 5 % churn
// (register then unregister an extra instance), as three open-model
// scenarios sharing RATE.
import exec from 'k6/execution';
import { RATE, arrival, get, instance, listed, ok, post, seed, serviceId, summary, thresholds } from './lib/artemis.js';

export const options = {
  scenarios: {
    heartbeat: arrival('heartbeat', RATE * 0.8),
    service: arrival('service', RATE * 0.15),
    churn: arrival('churn', RATE * 0.05),
  },
  thresholds,
};

export function setup() {
  return seed();
}

export function heartbeat(data) {
  const i = exec.scenario.iterationInTest % data.instances;
  ok(post('/api/registry/heartbeat.json', { instances: [instance(i)] }, { name: 'heartbeat' }), 'heartbeat');
}

// service reads a random seeded service; it must list at least its seeded
// instances (churn may add one for a moment).
export function service(data) {
  const s = Math.floor(Math.random() * data.services);
  const id = serviceId(s);
  const seeded = Math.floor(data.instances / data.services);
  listed(get(`/api/discovery/service.json?serviceId=${id}`, { name: 'service' }), 'service', id, seeded);
}

export function churn() {
  const extra = instance(exec.scenario.iterationInTest, 'churn');
  ok(post('/api/registry/register.json', { instances: [extra] }, { name: 'churn-register' }), 'churn register');
  ok(post('/api/registry/unregister.json', { instances: [extra] }, { name: 'churn-unregister' }), 'churn unregister');
}

export default heartbeat;
export const handleSummary = summary('mixed');
