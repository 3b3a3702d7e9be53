// Preloaded with `node --import`: maps the k6 modules a script imports to
// the small stand-ins in stubs/, so k6 scripts run under Node.js.
import { register } from 'node:module';

globalThis.__ENV = process.env;
globalThis.__VU = 1;
globalThis.__ITER = 0;
register('./loader.mjs', import.meta.url);
