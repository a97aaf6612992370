import { Duration } from 'aws-cdk-lib';
import { ReconcileSchedule, Threshold } from '../src';

describe('ReconcileSchedule', () => {
  test.each([
    [Duration.minutes(30), 'rate(30 minutes)'],
    [Duration.minutes(90), 'rate(90 minutes)'],
    [Duration.hours(1), 'rate(1 hour)'],
    [Duration.hours(6), 'rate(6 hours)'],
    [Duration.days(1), 'rate(1 day)'],
    [Duration.days(7), 'rate(7 days)'],
  ])('rate(%s) renders %s', (interval, expected) => {
    expect(ReconcileSchedule.rate(interval).expressionString).toBe(expected);
    expect(ReconcileSchedule.rate(interval).isCron).toBe(false);
  });

  test.each([
    'cron(0 3 ? * * *)',
    'cron(0 3 ? * SUN)',
    'cron(30 */6 ? * * *)',
    'cron(0,30 * ? * * *)',
    'cron(15 2 1 * ? *)',
  ])('accepts %s', (expression) => {
    expect(ReconcileSchedule.cron(expression).expressionString).toBe(expression);
    expect(ReconcileSchedule.cron(expression).isCron).toBe(true);
  });

  const cronRule = 'a State Manager cron expression is "cron(<minutes> <hours> <day-of-month> * <day-of-week> [<year>])" with "?" in one day field, and runs at most every 30 minutes';
  test.each([
    ['a rate under 30 minutes', () => ReconcileSchedule.rate(Duration.minutes(29)), '`reconcileSchedule`: State Manager runs an association at most every 30 minutes, got: "29 minutes"'],
    ['a rate in seconds', () => ReconcileSchedule.rate(Duration.seconds(1830)), '`reconcileSchedule`: a rate must be a whole number of minutes, got: "30 minutes 30 seconds"'],
    ['a cron without cron()', () => ReconcileSchedule.cron('0 3 ? * * *'), `\`reconcileSchedule\`: ${cronRule}, got: "0 3 ? * * *"`],
    ['a cron with 4 fields', () => ReconcileSchedule.cron('cron(0 3 ? *)'), `\`reconcileSchedule\`: ${cronRule}, got: "cron(0 3 ? *)"`],
    ['a cron every minute', () => ReconcileSchedule.cron('cron(* * ? * * *)'), `\`reconcileSchedule\`: ${cronRule}, got: "cron(* * ? * * *)"`],
    ['a cron every 10 minutes', () => ReconcileSchedule.cron('cron(0/10 * ? * * *)'), `\`reconcileSchedule\`: ${cronRule}, got: "cron(0/10 * ? * * *)"`],
    ['a cron at minutes 0 and 10', () => ReconcileSchedule.cron('cron(0,10 * ? * * *)'), `\`reconcileSchedule\`: ${cronRule}, got: "cron(0,10 * ? * * *)"`],
    ['a cron with a month', () => ReconcileSchedule.cron('cron(0 3 ? 1 * *)'), `\`reconcileSchedule\`: ${cronRule}, got: "cron(0 3 ? 1 * *)"`],
    ['a cron without ?', () => ReconcileSchedule.cron('cron(0 3 * * * *)'), `\`reconcileSchedule\`: ${cronRule}, got: "cron(0 3 * * * *)"`],
    ['a cron with shell characters', () => ReconcileSchedule.cron('cron(0 3 ? * $(id) *)'), `\`reconcileSchedule\`: ${cronRule}, got: "cron(0 3 ? * $(id) *)"`],
  ])('refuses %s', (_name, make, message) => {
    expect(make).toThrow(message);
  });
});

describe('Threshold', () => {
  test('renders counts and percentages as SSM spells them', () => {
    expect(Threshold.count(10).value).toBe('10');
    expect(Threshold.percentage(25).value).toBe('25%');
    expect(Threshold.percentage(25)._render('maxConcurrency', false)).toBe('25%');
    expect(Threshold.count(0)._render('maxErrors', true)).toBe('0');
  });

  test.each([
    ['a zero concurrency', () => Threshold.count(0)._render('maxConcurrency', false), '`maxConcurrency`: a node count must be a whole number from 1 to 9999999, got: 0'],
    ['a 0% concurrency', () => Threshold.percentage(0)._render('maxConcurrency', false), '`maxConcurrency`: a percentage must be a whole number from 1 to 100, got: 0'],
    ['a percentage over 100', () => Threshold.percentage(101)._render('maxErrors', true), '`maxErrors`: a percentage must be a whole number from 0 to 100, got: 101'],
    ['a fraction', () => Threshold.count(1.5)._render('maxErrors', true), '`maxErrors`: a node count must be a whole number from 0 to 9999999, got: 1.5'],
    ['a negative count', () => Threshold.count(-1)._render('maxErrors', true), '`maxErrors`: a node count must be a whole number from 0 to 9999999, got: -1'],
    ['a count over 9999999', () => Threshold.count(10_000_000)._render('maxConcurrency', false), '`maxConcurrency`: a node count must be a whole number from 1 to 9999999, got: 10000000'],
  ])('refuses %s', (_name, make, message) => {
    expect(make).toThrow(message);
  });
});
