// Stand-in for 'k6/execution'.
import { state } from '../state.mjs';

const execution = {
  get scenario() {
    return { name: state.scenario.name, iterationInTest: state.scenario.iterationInTest, iterationInInstance: state.scenario.iterationInTest };
  },
  vu: { idInTest: 1, idInInstance: 1, iterationInInstance: 0 },
  instance: { vusActive: 1 },
};

export default execution;
