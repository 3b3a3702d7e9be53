// A deliberately broken script: the dry run must fail it (rejected body).
// want: /api/registry/register.json: 400
import http from 'k6/http';
import { RATE, BASE_URL, arrival, summary, thresholds } from '../../lib/artemis.js';

export const options = { scenarios: { broken: arrival('broken', RATE) }, thresholds };

export function broken() {
  http.post(`${BASE_URL}/api/registry/register.json`, '{"instances": [', { headers: { 'Content-Type': 'application/json' } });
}

export const handleSummary = summary('broken');
