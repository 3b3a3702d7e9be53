// A deliberately broken script: the dry run must fail it. It runs k6/mixed.js
// as it is, except that its service scenario picks among 10,000 times as many
// services (with 10,000 times as many instances, so it still expects as many
// per service): nearly all were never seeded and answer success with no
// instances, which mixed.js's check must catch.
// want: check failed: service: instances listed
import * as mixed from '../../mixed.js';

export const options = mixed.options;
export const setup = mixed.setup;
export const heartbeat = mixed.heartbeat;
export const churn = mixed.churn;
export const handleSummary = mixed.handleSummary;

export function service(data) {
  mixed.service(Object.assign({}, data, { services: data.services * 10000, instances: data.instances * 10000 }));
}
