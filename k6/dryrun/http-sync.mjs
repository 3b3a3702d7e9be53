// Synchronous HTTP for the k6/http stand-in (k6's http calls block): a
// worker thread runs fetch while this thread waits on a shared flag, then
// takes the answer off the port with receiveMessageOnPort.
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';

const flag = new Int32Array(new SharedArrayBuffer(4));
const { port1, port2 } = new MessageChannel();
const worker = new Worker(new URL('./http-worker.mjs', import.meta.url), {
  workerData: { flag, port: port2 },
  transferList: [port2],
});
worker.unref();
port1.unref();

export function request(method, url, body, headers, timeoutMs = 10000) {
  Atomics.store(flag, 0, 0);
  port1.postMessage({ method, url, body, headers });
  if (Atomics.wait(flag, 0, 0, timeoutMs) === 'timed-out') {
    return { status: 0, body: '', headers: {}, error: `timeout after ${timeoutMs} ms`, duration: timeoutMs };
  }
  return receiveMessageOnPort(port1).message;
}
