import { fail, isUnresolved } from './validation';

/**
 * A number of nodes, or a percentage of the targeted nodes, for an association's
 * concurrency and error limits.
 */
export class Threshold {
  /**
   * An absolute number of nodes.
   *
   * @param nodes 0 to 9,999,999 (0 is only valid as an error threshold)
   */
  public static count(nodes: number): Threshold {
    return new Threshold(nodes, '');
  }

  /**
   * A percentage of the targeted nodes.
   *
   * @param percent 0 to 100 (0 is only valid as an error threshold)
   */
  public static percentage(percent: number): Threshold {
    return new Threshold(percent, '%');
  }

  private constructor(private readonly amount: number, private readonly unit: string) {}

  /** The value as SSM spells it, for example `10` or `25%`. */
  public get value(): string {
    return `${this.amount}${this.unit}`;
  }

  /**
   * Validates this threshold for `prop` and renders it for SSM.
   *
   * @internal
   */
  public _render(prop: string, allowZero: boolean): string {
    if (isUnresolved(this.amount)) return this.value;
    const min = allowZero ? 0 : 1;
    const max = this.unit === '%' ? 100 : 9_999_999;
    if (!Number.isInteger(this.amount) || this.amount < min || this.amount > max) {
      const what = this.unit === '%' ? 'a percentage' : 'a node count';
      fail(prop, `${what} must be a whole number from ${min} to ${max}`, this.amount);
    }
    return this.value;
  }
}
