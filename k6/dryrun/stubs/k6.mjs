// Stand-in for the 'k6' module.
import { state } from '../state.mjs';

export function check(value, sets) {
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    let ok = false;
    try {
      ok = Boolean(fn(value));
    } catch (e) {
      ok = false;
    }
    state.checks.push({ name, ok });
    all = all && ok;
  }
  return all;
}

export function fail(msg) {
  throw new Error(`fail(): ${msg}`);
}

export function group(_name, fn) {
  return fn();
}

export function sleep() {}

export default { check, fail, group, sleep };
