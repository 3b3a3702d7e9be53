import { workerData } from 'node:worker_threads';

const { flag, port } = workerData;
port.on('message', async ({ method, url, body, headers }) => {
  const t0 = performance.now();
  let res;
  try {
    const r = await fetch(url, { method, headers, body: body == null ? undefined : body, signal: AbortSignal.timeout(10000) });
    const text = await r.text();
    res = { status: r.status, body: text, headers: Object.fromEntries(r.headers), error: '', duration: performance.now() - t0 };
  } catch (e) {
    res = { status: 0, body: '', headers: {}, error: String(e && e.cause ? e.cause : e), duration: performance.now() - t0 };
  }
  port.postMessage(res);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
