import { Duration, Token } from 'aws-cdk-lib';
import { fail } from './validation';

/**
 * When the association runs again on every node, to catch pushes whose event was
 * missed (EventBridge delivery is best-effort) and nodes that were busy.
 *
 * State Manager runs the association at most every 30 minutes.
 */
export class ReconcileSchedule {
  /**
   * Every `interval` (at least 30 minutes, a whole number of minutes, hours or days).
   *
   * @param interval how often
   */
  public static rate(interval: Duration): ReconcileSchedule {
    if (interval.isUnresolved()) {
      fail('reconcileSchedule', 'the rate interval must be known at synth time', interval.toString());
    }
    const minutes = interval.toMinutes({ integral: false });
    if (!Number.isInteger(minutes)) {
      fail('reconcileSchedule', 'a rate must be a whole number of minutes', interval.toHumanString());
    }
    if (minutes < 30) {
      fail('reconcileSchedule', 'State Manager runs an association at most every 30 minutes', interval.toHumanString());
    }
    let value = minutes;
    let unit = 'minute';
    if (minutes % (60 * 24) === 0) {
      value = minutes / (60 * 24);
      unit = 'day';
    } else if (minutes % 60 === 0) {
      value = minutes / 60;
      unit = 'hour';
    }
    return new ReconcileSchedule(`rate(${value} ${unit}${value === 1 ? '' : 's'})`, false);
  }

  /**
   * A State Manager cron expression such as `cron(0 3 ? * * *)`: minutes, hours,
   * day of month, month, day of week, and optionally year. State Manager does not
   * accept a month (use `*`), needs `?` in the day of month or the day of week, and
   * refuses intervals shorter than 30 minutes.
   *
   * @param expression the whole expression, with `cron(` and `)`
   */
  public static cron(expression: string): ReconcileSchedule {
    if (Token.isUnresolved(expression)) return new ReconcileSchedule(expression, true);
    const rule = 'a State Manager cron expression is "cron(<minutes> <hours> <day-of-month> * <day-of-week> [<year>])" with "?" in one day field, and runs at most every 30 minutes';
    const match = /^cron\((.*)\)$/.exec(expression);
    if (!match) fail('reconcileSchedule', rule, expression);
    const fields = match[1].trim().split(/\s+/);
    if (fields.length < 5 || fields.length > 6 || fields.some(f => !/^[0-9A-Za-z,\-*/?#L]+$/.test(f))) {
      fail('reconcileSchedule', rule, expression);
    }
    const [minutesField, , dayOfMonth, month, dayOfWeek] = fields;
    if (month !== '*' || (dayOfMonth === '?') === (dayOfWeek === '?')) {
      fail('reconcileSchedule', rule, expression);
    }
    // A wildcard or a short step in the minutes field runs more often than every 30 minutes.
    const step = /^(?:\*|\d+)\/(\d+)$/.exec(minutesField);
    const minutes = minutesField.split(',').map(Number);
    // Two minutes in one hour must be at least 30 minutes apart, both ways round the hour.
    const gap = minutes.length === 2 ? Math.abs(minutes[0] - minutes[1]) : 30;
    if (minutesField === '*' || (step && Number(step[1]) < 30) || minutes.length > 2 || minutesField.includes('-')
      || Math.min(gap, 60 - gap) < 30) {
      fail('reconcileSchedule', rule, expression);
    }
    return new ReconcileSchedule(expression, true);
  }

  /** The expression as SSM spells it. */
  public readonly expressionString: string;

  /** Whether this is a cron expression (cron schedules can apply only at the cron interval). */
  public readonly isCron: boolean;

  private constructor(expression: string, isCron: boolean) {
    this.expressionString = expression;
    this.isCron = isCron;
  }
}
