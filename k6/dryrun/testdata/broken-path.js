// A deliberately broken script: the dry run must fail it (wrong path).
// want: /api/registry/heartbeats.json: 404
import { RATE, arrival, ok, post, summary, thresholds } from '../../lib/artemis.js';

export const options = { scenarios: { broken: arrival('broken', RATE) }, thresholds };

export function broken() {
  ok(post('/api/registry/heartbeats.json', { instances: [] }, { name: 'broken' }), 'broken');
}

export const handleSummary = summary('broken');
