// A deliberately broken script: the dry run must fail it (no such WebSocket path).
// want: check failed: upgraded (101)
import ws from 'k6/ws';
import { check } from 'k6';
import { BASE_URL, RATE, arrival, summary, thresholds } from '../../lib/artemis.js';

export const options = { scenarios: { broken: arrival('broken', RATE) }, thresholds };

export function broken() {
  const res = ws.connect(`${BASE_URL.replace(/^http/, 'ws')}/ws/discovery/instance-changes`, null, (socket) => {
    socket.on('open', () => socket.close());
  });
  check(res, { 'upgraded (101)': (r) => r && r.status === 101 });
}

export const handleSummary = summary('broken');
