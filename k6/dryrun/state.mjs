// What the stand-ins record while a script runs; the runner reads it.
export const state = {
  checks: [], // { name, ok }
  requests: [], // { method, url, status, error, duration }
  scenario: { name: 'default', iterationInTest: 0 },
  reset() {
    this.checks = [];
    this.requests = [];
    this.scenario = { name: 'default', iterationInTest: 0 };
  },
};
