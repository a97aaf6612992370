// A small evaluator of CloudWatch Logs metric filters, for the patterns the library synthesizes.
// No implementation of CloudWatch Logs' filter pattern language is published (the only real one is
// the service itself: the TestMetricFilter API, which needs an account; the integ tests read the
// metrics the filters publish in a real account). This one follows the documented syntax and throws
// on anything else, so that a pattern this model does not know fails the tests instead of passing:
// CloudWatch Logs user guide, "Filter pattern syntax for metric filters, subscription filters, and
// filter log events" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html)
// and "Filter pattern syntax for metric filters" (FilterAndPatternSyntaxForMetricFilters.html).
//
//   covered:  unstructured patterns of one or more double-quoted terms, all of which must occur in
//             the log event (terms are case-sensitive; a quoted term is matched as written, spaces
//             and punctuation included); JSON patterns `{ SELECTOR = "value" }` joined by `&&`, the
//             selector a dotted `$.` path whose keys may contain `-`, `=` exact and case-sensitive on
//             a string value, `*` meaning "the field exists"; a log event that is not JSON never
//             matches a JSON pattern; metric values that are numbers; dimensions whose value is a
//             `$.` path (published only when the field is in the event, per the CloudFormation schema).
//   not covered (throws): unquoted terms, `?` (or), `-` (not), `||`, `!=`, numeric comparisons,
//             IS NULL/TRUE/FALSE, arrays in selectors, space-delimited `[...]` patterns, `%regex%`,
//             metric values taken from fields.

/** What the metric filter publishes for one log event, or undefined when it does not match. */
export interface DataPoint {
  readonly namespace: string;
  readonly metricName: string;
  readonly value: number;
  readonly dimensions: { [key: string]: string };
}

/** An `AWS::Logs::MetricFilter`'s properties, as synthesized. */
export interface MetricFilterProps {
  readonly FilterPattern: string;
  readonly MetricTransformations: Array<{
    MetricName: string;
    MetricNamespace: string;
    MetricValue: string;
    Dimensions?: Array<{ Key: string; Value: string }>;
  }>;
}

/** Does the log event's message match the filter pattern? */
export function matchesFilterPattern(pattern: string, message: string): boolean {
  const trimmed = pattern.trim();
  if (trimmed.startsWith('{')) return matchesJson(trimmed, message);
  return matchesTerms(trimmed, message);
}

/** The data points one log event makes the filter publish (none when it does not match). */
export function publish(filter: MetricFilterProps, message: string): DataPoint[] {
  if (!matchesFilterPattern(filter.FilterPattern, message)) return [];
  return filter.MetricTransformations.flatMap(t => {
    if (!/^[+-]?[0-9]*\.?[0-9]+$/.test(t.MetricValue)) throw new Error(`metric filter: only numeric metric values are modelled, got ${t.MetricValue}`);
    const dimensions: { [key: string]: string } = {};
    for (const d of t.Dimensions ?? []) {
      const value = select(parseJson(message), d.Value);
      // "This dimension will only be published for a metric if the value is found in the log event."
      if (value === undefined) return [];
      dimensions[d.Key] = String(value);
    }
    return [{ namespace: t.MetricNamespace, metricName: t.MetricName, value: Number(t.MetricValue), dimensions }];
  });
}

function matchesTerms(pattern: string, message: string): boolean {
  const terms: string[] = [];
  const re = /\s*"((?:[^"\\]|\\.)*)"\s*/y;
  let at = 0;
  while (at < pattern.length) {
    re.lastIndex = at;
    const m = re.exec(pattern);
    if (!m) throw new Error(`metric filter: only double-quoted terms are modelled in unstructured patterns, got ${JSON.stringify(pattern)}`);
    terms.push(m[1].replace(/\\(.)/g, '$1'));
    at = re.lastIndex;
  }
  if (terms.length === 0) throw new Error('metric filter: an empty pattern (matches everything) is not modelled');
  return terms.every(term => message.includes(term));
}

function matchesJson(pattern: string, message: string): boolean {
  const m = /^\{(.*)\}$/s.exec(pattern);
  if (!m) throw new Error(`metric filter: unbalanced JSON pattern ${pattern}`);
  const body = m[1];
  if (/\|\||!=|[<>]/.test(body.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) throw new Error(`metric filter: only = joined by && is modelled, got ${pattern}`);
  const event = parseJson(message);
  if (event === undefined) return false;
  return body.split('&&').every(clause => {
    const c = /^\s*(\$(?:\.[A-Za-z0-9_-]+)+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\*))\s*$/.exec(clause);
    if (!c) throw new Error(`metric filter: clause not modelled: ${clause}`);
    const value = select(event, c[1]);
    if (c[3] === '*') return value !== undefined;
    const expected = c[2].replace(/\\(.)/g, '$1');
    if (expected.includes('*')) throw new Error(`metric filter: wildcards in values are not modelled: ${clause}`);
    return typeof value === 'string' && value === expected;
  });
}

function parseJson(message: string): any {
  try {
    return JSON.parse(message);
  } catch {
    return undefined;
  }
}

function select(event: any, selector: string): unknown {
  if (!/^\$(\.[A-Za-z0-9_-]+)+$/.test(selector)) throw new Error(`metric filter: selector not modelled: ${selector}`);
  let value = event;
  for (const key of selector.split('.').slice(1)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = value[key];
  }
  return value === null || typeof value === 'object' ? undefined : value;
}
