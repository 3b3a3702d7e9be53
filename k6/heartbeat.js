// Heartbeats of seeded instances at a constant arrival rate, one instance
// per request, cycling through all of them.
import exec from 'k6/execution';
import { RATE, arrival, instance, ok, post, seed, summary, thresholds } from './lib/artemis.js';

export const options = { scenarios: { heartbeat: arrival('heartbeat', RATE) }, thresholds };

export function setup() {
  return seed();
}

export function heartbeat(data) {
  const i = exec.scenario.iterationInTest % data.instances;
  ok(post('/api/registry/heartbeat.json', { instances: [instance(i)] }, { name: 'heartbeat' }), 'heartbeat');
}

export default heartbeat;
export const handleSummary = summary('heartbeat');
