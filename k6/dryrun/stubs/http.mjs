// Stand-in for 'k6/http': blocking requests, k6-shaped responses.
import { state } from '../state.mjs';
import { request as send } from '../http-sync.mjs';

function select(value, path) {
  if (!path) return value;
  return path.split('.').reduce((v, k) => (v == null ? undefined : v[/^\d+$/.test(k) ? Number(k) : k]), value);
}

export function request(method, url, body, params = {}) {
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new Error(`k6/http: bad URL ${url}`);
  const headers = Object.assign({}, params.headers);
  const raw = send(method, url, body == null ? null : typeof body === 'string' ? body : JSON.stringify(body), headers);
  state.requests.push({ method, url, status: raw.status, error: raw.error, duration: raw.duration, tags: params.tags });
  return {
    status: raw.status,
    body: raw.body,
    headers: raw.headers,
    error: raw.error,
    timings: { duration: raw.duration },
    request: { method, url, body },
    json(path) {
      return select(JSON.parse(this.body), path);
    },
  };
}

export const get = (url, params) => request('GET', url, null, params);
export const post = (url, body, params) => request('POST', url, body, params);
export const put = (url, body, params) => request('PUT', url, body, params);
export const del = (url, body, params) => request('DELETE', url, body, params);

export default { request, get, post, put, del };
