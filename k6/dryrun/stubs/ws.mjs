// Stand-in for 'k6/ws': ws.connect blocks while it runs the socket's event
// loop (events from a worker thread, plus the socket's timers) until the
// socket closes, as k6's does. The connection is recorded as a request:
// status 101 when the upgrade succeeded, 0 with the error when it did not.
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { state } from '../state.mjs';

const flag = new Int32Array(new SharedArrayBuffer(4));
const { port1, port2 } = new MessageChannel();
let worker;
let nextId = 1;
const SILENCE_MS = 10000; // a socket with no event and no timer for this long fails

function start() {
  if (worker) return;
  if (typeof WebSocket === 'undefined') throw new Error('k6/ws stand-in: this Node.js has no WebSocket (use Node 22+, or --experimental-websocket)');
  worker = new Worker(new URL('../ws-worker.mjs', import.meta.url), { workerData: { flag, port: port2 }, transferList: [port2] });
  worker.unref();
  port1.unref();
}

const pending = []; // events of other sockets (not expected: connect blocks)

function nextEvent(id, timeoutMs) {
  for (;;) {
    const i = pending.findIndex((e) => e.id === id);
    if (i >= 0) return pending.splice(i, 1)[0];
    const seen = Atomics.load(flag, 0);
    const m = receiveMessageOnPort(port1);
    if (m) {
      pending.push(m.message);
      continue;
    }
    if (timeoutMs <= 0) return null;
    const t0 = Date.now();
    if (Atomics.wait(flag, 0, seen, timeoutMs) === 'timed-out') return null;
    timeoutMs -= Date.now() - t0;
  }
}

export function connect(url, params, callback) {
  if (typeof params === 'function') {
    callback = params;
    params = {};
  }
  if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) throw new Error(`k6/ws: bad URL ${url}`);
  start();
  const id = nextId++;
  const handlers = {};
  const timers = [];
  let closed = false;
  let opened = false;
  let error = '';
  const t0 = Date.now();
  const socket = {
    on(event, fn) {
      handlers[event] = fn;
    },
    send(data) {
      port1.postMessage({ op: 'send', id, data: String(data) });
    },
    close() {
      port1.postMessage({ op: 'close', id });
    },
    setTimeout(fn, ms) {
      timers.push({ at: Date.now() + ms, fn });
    },
    setInterval(fn, ms) {
      const t = { at: Date.now() + ms, fn: () => { fn(); t.at = Date.now() + ms; timers.push(t); } };
      timers.push(t);
    },
    ping() {},
  };
  port1.postMessage({ op: 'open', id, url });
  callback(socket);
  let lastEvent = Date.now();
  while (!closed) {
    timers.sort((a, b) => a.at - b.at);
    if (opened && timers.length && timers[0].at <= Date.now()) {
      timers.shift().fn();
      continue;
    }
    const wait = opened && timers.length ? Math.max(0, timers[0].at - Date.now()) : SILENCE_MS - (Date.now() - lastEvent);
    const ev = nextEvent(id, Math.min(wait, SILENCE_MS));
    if (!ev) {
      if (Date.now() - lastEvent >= SILENCE_MS && !(opened && timers.length)) {
        error = error || `no event for ${SILENCE_MS} ms`;
        socket.close();
        closed = true;
      }
      continue;
    }
    lastEvent = Date.now();
    if (ev.type === 'open') {
      opened = true;
      handlers.open && handlers.open();
    } else if (ev.type === 'message') {
      handlers.message && handlers.message(ev.data);
    } else if (ev.type === 'error') {
      error = error || ev.data;
      handlers.error && handlers.error({ error: () => ev.data });
    } else if (ev.type === 'close') {
      closed = true;
      handlers.close && handlers.close(ev.data);
    }
  }
  const res = { url, status: opened ? 101 : 0, error: opened ? '' : error || 'upgrade failed' };
  state.requests.push({ method: 'GET', url, status: res.status, error: res.error, duration: Date.now() - t0, ws: true });
  return res;
}

export default { connect };
