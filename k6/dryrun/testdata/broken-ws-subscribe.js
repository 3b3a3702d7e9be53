// A deliberately broken script: the dry run must fail it (the subscription
// names no serviceId, so the change it makes is never pushed to it).
// want: check failed: change pushed
import ws from 'k6/ws';
import { check } from 'k6';
import { BASE_URL, RATE, arrival, instance, ok, post, summary, thresholds } from '../../lib/artemis.js';

export const options = { scenarios: { broken: arrival('broken', RATE) }, thresholds };

export function broken() {
  const inst = instance(__ITER, 'broken-ws');
  let got = false;
  ws.connect(`${BASE_URL.replace(/^http/, 'ws')}/ws/discovery/instance-change`, null, (socket) => {
    socket.on('open', () => {
      socket.send(JSON.stringify({ service: inst.serviceId }));
      socket.setTimeout(() => ok(post('/api/registry/register.json', { instances: [inst] }, { name: 'broken' }), 'register'), 50);
      socket.setTimeout(() => socket.close(), 300);
    });
    socket.on('message', () => {
      got = true;
    });
  });
  check(got, { 'change pushed': (g) => g });
}

export const handleSummary = summary('broken');
