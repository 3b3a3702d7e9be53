// service.json reads of random seeded services at a constant arrival rate.
import { check } from 'k6';
import { RATE, arrival, get, ok, seed, serviceId, summary, thresholds } from './lib/artemis.js';

export const options = { scenarios: { service: arrival('service', RATE) }, thresholds };

export function setup() {
  return seed();
}

export function service(data) {
  const s = Math.floor(Math.random() * data.services);
  const res = get(`/api/discovery/service.json?serviceId=${serviceId(s)}`, { name: 'service' });
  ok(res, 'service');
  const want = Math.floor(data.instances / data.services) + (s < data.instances % data.services ? 1 : 0);
  check(res, { 'service: every instance listed': (r) => r.status === 200 && (r.json('service.instances') || []).length === want });
}

export default service;
export const handleSummary = summary('service');
