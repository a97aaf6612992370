import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { NodeOutputLogs, NodeStatus, PrefetchOutcome, PrefetchStatusEvents } from './prefetch-monitoring';

/** What the dashboard of one prefetcher draws from. @internal */
export interface DashboardParts {
  readonly title: string;
  readonly matchedEvents: cloudwatch.Metric;
  readonly rolloutsStarted: cloudwatch.Metric;
  readonly rolloutsFailed: cloudwatch.Metric;
  readonly sentToDlq: cloudwatch.Metric;
  readonly deadLetterQueue: sqs.IQueue;
  readonly statusEvents?: PrefetchStatusEvents;
  readonly associationId: string;
  readonly outputLogs?: NodeOutputLogs;
}

const PERIOD = Duration.minutes(5);
const FAILURE_OUTCOMES = PrefetchOutcome.ALL.filter(o => o.isFailure);
const SKIP_OUTCOMES = PrefetchOutcome.ALL.filter(o => o.value.startsWith('skipped-'));

/**
 * The widgets of one prefetcher, in rows of 24 columns: pushes and rollouts, nodes after pushes and
 * after joins, outcomes and pull seconds (with the nodes' output logs), the nodes that did not
 * succeed, the dead-letter queue. @internal
 */
export function dashboardWidgets(parts: DashboardParts): cloudwatch.IWidget[][] {
  const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
    new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, period: PERIOD, leftYAxis: { min: 0, showUnits: false }, ...extra });
  const rows: cloudwatch.IWidget[][] = [];

  rows.push([new cloudwatch.TextWidget({
    markdown: `### Image prefetcher: ${parts.title}\nPer node: SSM status events${parts.outputLogs ? ' and the script\'s summary lines' : ''}. README: "How to see what happened".`,
    width: 24,
    height: 2,
  })]);

  const first: cloudwatch.IWidget[] = [
    graph('Pushes matched, rollouts started and failed', [
      parts.matchedEvents.with({ label: 'pushes matched' }),
      parts.rolloutsStarted.with({ label: 'commands started' }),
      parts.rolloutsFailed.with({ label: 'commands not sent' }),
    ]),
  ];
  const events = parts.statusEvents;
  if (events) {
    first.push(graph('Nodes after pushes', [
      events.metricCommandNodes(NodeStatus.SUCCESS, { label: 'succeeded', color: cloudwatch.Color.GREEN }),
      events.metricCommandNodes(NodeStatus.FAILED, { label: 'failed', color: cloudwatch.Color.RED }),
      events.metricCommandNodes(NodeStatus.TIMED_OUT, { label: 'timed out', color: cloudwatch.Color.ORANGE }),
    ]));
    first.push(graph('Nodes after joins (association)', [
      events.metricAssociationNodes(parts.associationId, NodeStatus.SUCCESS, { label: 'succeeded', color: cloudwatch.Color.GREEN }),
      events.metricAssociationNodes(parts.associationId, NodeStatus.FAILED, { label: 'failed', color: cloudwatch.Color.RED }),
    ]));
  }
  rows.push(first);

  const output = parts.outputLogs;
  if (output) {
    rows.push([
      graph('Outcomes after pushes (summary lines)', [
        output.metricOutcome(PrefetchOutcome.PULLED, { label: 'pulled', color: cloudwatch.Color.GREEN }),
        output.metricOutcome(PrefetchOutcome.PRESENT, { label: 'present', color: cloudwatch.Color.BLUE }),
        outcomeSum(output, SKIP_OUTCOMES, 'skipped', cloudwatch.Color.ORANGE),
        outcomeSum(output, FAILURE_OUTCOMES, 'failed', cloudwatch.Color.RED),
      ], { stacked: true }),
      graph('Skip reasons', SKIP_OUTCOMES.map(o => output.metricOutcome(o, { label: o.value }))),
      new cloudwatch.LogQueryWidget({
        title: 'Pull seconds, p50 and p99 (pulled images)',
        logGroupNames: [output.logGroup.logGroupName],
        view: cloudwatch.LogQueryVisualizationType.LINE,
        queryLines: [
          'filter @message like /prefetch: summary/',
          'parse @message /outcome=(?<outcome>[a-z-]+) seconds=(?<seconds>[0-9.]+)/',
          'filter outcome = "pulled"',
          'stats pct(seconds, 50) as p50, pct(seconds, 99) as p99 by bin(5m)',
        ],
        width: 8,
        height: 6,
      }),
    ]);
  }

  const last: cloudwatch.IWidget[] = [];
  if (events) {
    last.push(new cloudwatch.LogQueryWidget({
      title: 'Nodes that did not succeed (latest 50)',
      logGroupNames: [events.logGroup.logGroupName],
      view: cloudwatch.LogQueryVisualizationType.TABLE,
      queryLines: [
        'fields @timestamp, `detail.instance-id` as instance, `detail.status` as status, `detail.command-id` as command, `detail.association-id` as association',
        'filter status != "Success"',
        'sort @timestamp desc',
        'limit 50',
      ],
      width: 16,
      height: 6,
    }));
  }
  last.push(graph('Dead-letter queue', [
    parts.sentToDlq.with({ label: 'push events sent to the queue' }),
    parts.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'messages in the queue', statistic: cloudwatch.Stats.MAXIMUM, period: PERIOD }),
  ]));
  rows.push(last);
  return rows;
}

function outcomeSum(output: NodeOutputLogs, outcomes: PrefetchOutcome[], label: string, color: string): cloudwatch.IMetric {
  const usingMetrics: { [id: string]: cloudwatch.IMetric } = {};
  outcomes.forEach((o, i) => { usingMetrics[`${label}${i}`] = output.metricOutcome(o); });
  return new cloudwatch.MathExpression({
    expression: `SUM([${Object.keys(usingMetrics).join(',')}])`,
    usingMetrics,
    label,
    color,
    period: PERIOD,
  });
}
