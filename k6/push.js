// WebSocket push: each `push` iteration subscribes to a service of its own
// on /ws/discovery/instance-change, registers an instance of it over HTTP,
// times the `new` frame, unregisters it and times the `delete` frame
// (push_latency: request sent → frame received, ms). Meanwhile `watch`
// iterations hold all-changes sessions open for HOLD_MS each (about
// WATCHERS at a time), so every change also fans out to them; each watcher
// makes one change of its own and must see it, and every frame it gets
// must be an InstanceChange.
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { BASE_URL, PREFIX, arrival, instance, ok, post, summary, thresholds } from './lib/artemis.js';

const WS_URL = BASE_URL.replace(/^http/, 'ws');
const CHANGES = parseInt(__ENV.RATE || '10', 10); // push iterations per second (two changes each)
const WATCHERS = parseInt(__ENV.WATCHERS || '100', 10);
const HOLD_MS = parseInt(__ENV.HOLD_MS || '10000', 10);

const pushLatency = new Trend('push_latency', true);
const watcherFrames = new Counter('watcher_frames');

export const options = {
  scenarios: {
    push: arrival('push', CHANGES),
    watch: arrival('watch', Math.max(1, (WATCHERS * 1000) / HOLD_MS)),
  },
  thresholds: Object.assign({ push_latency: ['p(99)<5'] }, thresholds),
};

function pushInstance(tag) {
  const inst = instance(0, `push-${tag}`, `push-${tag}`);
  inst.serviceId = `${PREFIX}-push-svc-${tag}`;
  return inst;
}

export function push() {
  const tag = `${__VU}-${__ITER}`;
  const inst = pushInstance(tag);
  let sentAt = 0;
  const seen = { new: false, delete: false };
  const res = ws.connect(`${WS_URL}/ws/discovery/instance-change`, null, (socket) => {
    socket.on('open', () => {
      socket.send(JSON.stringify({ serviceId: inst.serviceId, regionId: inst.regionId }));
      // The server applies a subscription as it reads it; give it a moment.
      socket.setTimeout(() => {
        sentAt = Date.now();
        ok(post('/api/registry/register.json', { instances: [inst] }, { name: 'push-register' }), 'push: register');
      }, 50);
      socket.setTimeout(() => socket.close(), 5000); // bounded whatever happens
    });
    socket.on('message', (msg) => {
      const c = JSON.parse(msg);
      if (!c.instance || c.instance.instanceId !== inst.instanceId || seen[c.changeType] !== false) return;
      seen[c.changeType] = true;
      pushLatency.add(Date.now() - sentAt);
      if (c.changeType === 'new') {
        sentAt = Date.now();
        ok(post('/api/registry/unregister.json', { instances: [inst] }, { name: 'push-unregister' }), 'push: unregister');
      } else {
        socket.close();
      }
    });
  });
  check(res, { 'push: upgraded (101)': (r) => r && r.status === 101 });
  check(seen, { 'push: new and delete frames received': (s) => s.new && s.delete });
}

export function watch() {
  const inst = pushInstance(`watch-${__VU}-${__ITER}`);
  let frames = 0;
  let bad = 0;
  let own = 0;
  const res = ws.connect(`${WS_URL}/ws/discovery/all-instance-change`, null, (socket) => {
    socket.on('open', () => {
      socket.setTimeout(() => {
        ok(post('/api/registry/register.json', { instances: [inst] }, { name: 'watch-register' }), 'watch: register');
        ok(post('/api/registry/unregister.json', { instances: [inst] }, { name: 'watch-unregister' }), 'watch: unregister');
      }, 50);
      socket.setTimeout(() => socket.close(), HOLD_MS);
    });
    socket.on('message', (msg) => {
      frames++;
      try {
        const c = JSON.parse(msg);
        if (!c.changeType || !c.instance || !c.instance.serviceId) bad++;
        else if (c.instance.instanceId === inst.instanceId) own++;
      } catch (e) {
        bad++;
      }
    });
  });
  watcherFrames.add(frames);
  check(res, { 'watch: upgraded (101)': (r) => r && r.status === 101 });
  check({ bad, own }, {
    'watch: every frame is an InstanceChange': (v) => v.bad === 0,
    'watch: its own new and delete arrived': (v) => v.own === 2,
  });
}

export default push;
export const handleSummary = summary('push');
