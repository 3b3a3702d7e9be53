// The mixed workload: 80 % heartbeats, 15 % service reads, 5 % churn
// (register then unregister an extra instance), as three open-model
// scenarios sharing RATE.
import exec from 'k6/execution';
import { RATE, arrival, get, instance, ok, post, seed, serviceId, summary, thresholds } from './lib/artemis.js';

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

export function service(data) {
  const s = Math.floor(Math.random() * data.services);
  ok(get(`/api/discovery/service.json?serviceId=${serviceId(s)}`, { name: 'service' }), 'service');
}

export function churn() {
  const extra = instance(exec.scenario.iterationInTest, 'churn');
  ok(post('/api/registry/register.json', { instances: [extra] }, { name: 'churn-register' }), 'churn register');
  ok(post('/api/registry/unregister.json', { instances: [extra] }, { name: 'churn-unregister' }), 'churn unregister');
}

export default heartbeat;
export const handleSummary = summary('mixed');
