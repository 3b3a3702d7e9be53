// A deliberately broken script: the dry run must fail it (a check fails:
// heartbeats of instances that were never registered).
// want: check failed: broken: success
import { RATE, arrival, instance, ok, post, summary, thresholds } from '../../lib/artemis.js';

export const options = { scenarios: { broken: arrival('broken', RATE) }, thresholds };

export function broken() {
  ok(post('/api/registry/heartbeat.json', { instances: [instance(999999, 'never')] }, { name: 'broken' }), 'broken');
}

export const handleSummary = summary('broken');
