// Stand-in for 'k6/metrics': metrics accept values and keep them.
class Metric {
  constructor(name) {
    this.name = name;
    this.values = [];
  }
  add(v) {
    this.values.push(v);
  }
}
export class Trend extends Metric {}
export class Rate extends Metric {}
export class Counter extends Metric {}
export class Gauge extends Metric {}
export default { Trend, Rate, Counter, Gauge };
