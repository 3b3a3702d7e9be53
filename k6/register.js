// Registration at a constant arrival rate: each iteration registers a new
// instance, in services of their own (reg-svc-*), which later expires by TTL.
import exec from 'k6/execution';
import { RATE, arrival, instance, ok, post, summary, thresholds } from './lib/artemis.js';

export const options = { scenarios: { register: arrival('register', RATE) }, thresholds };

export function register() {
  const i = exec.scenario.iterationInTest;
  ok(post('/api/registry/register.json', { instances: [instance(i, 'reg', 'reg-svc')] }, { name: 'register' }), 'register');
}

export default register;
export const handleSummary = summary('register');
