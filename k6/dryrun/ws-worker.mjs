// Holds the WebSocket connections of the k6/ws stand-in (WebSocket needs
// Node 22, or --experimental-websocket on Node 20/21). Events go back as
// messages on the port; a shared counter wakes the waiting main thread.
import { workerData } from 'node:worker_threads';

const { flag, port } = workerData;
const sockets = new Map();

function emit(id, type, data) {
  port.postMessage({ id, type, data });
  Atomics.add(flag, 0, 1);
  Atomics.notify(flag, 0);
}

port.on('message', ({ op, id, url, data }) => {
  if (op === 'open') {
    let s;
    try {
      s = new WebSocket(url);
    } catch (e) {
      emit(id, 'error', String(e));
      emit(id, 'close', 1006);
      return;
    }
    sockets.set(id, s);
    s.onopen = () => emit(id, 'open');
    s.onmessage = (ev) => emit(id, 'message', typeof ev.data === 'string' ? ev.data : String(ev.data));
    s.onerror = (ev) => emit(id, 'error', String((ev && ev.message) || 'websocket error'));
    s.onclose = (ev) => {
      sockets.delete(id);
      emit(id, 'close', ev.code);
    };
  } else if (op === 'send') {
    sockets.get(id)?.send(data);
  } else if (op === 'close') {
    sockets.get(id)?.close();
  }
});
