// From the node to the metric: SSM's per-node status events (the documented examples, test/contract/
// ssm-events.ts) through the SYNTHESIZED status-events rule (our EventBridge model; event-ruler judges
// the same cases in scripts/ground-truth.sh) and, as EventBridge writes them to the log group, through
// the synthesized metric filters; the node script's output, as the SSM agent uploads it, through the
// synthesized outcome filters (test/contract/metric-filters.ts, a documented-syntax evaluator: no
// implementation of the filter language is published; the integ test reads the real metrics).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { matchesPattern } from './eventbridge';
import { matchesFilterPattern, MetricFilterProps, publish } from './metric-filters';
import { DOCUMENTED_INSTANCE_ASSOCIATION, DOCUMENTED_INVOCATION, statusEventTable, withDetail } from './ssm-events';
import { ASSOCIATION_ID, DOCUMENT_NAME, synthesizeStatusEvents } from './status-synthesized';
import { PrefetchOutcome } from '../../src';

const { eventPattern, statusFilters, outputFilters } = synthesizeStatusEvents({ nodeOutputLogs: true });

/** What every filter of a log group publishes for one log event. */
function published(filters: MetricFilterProps[], message: string) {
  return filters.flatMap(f => publish(f, message));
}

describe('which SSM status events the synthesized rule keeps', () => {
  test.each(statusEventTable(DOCUMENT_NAME, ASSOCIATION_ID))('%s', (_name, event, expected) => {
    expect(matchesPattern(eventPattern, event)).toBe(expected);
  });
});

describe('what the status metric filters publish for the events the rule keeps (as EventBridge writes them: the event as JSON)', () => {
  test.each([
    ['Success', 'Success'], ['Failed', 'Failed'], ['TimedOut', 'TimedOut'], ['Cancelled', 'Cancelled'],
  ])('a node\'s invocation %s: CommandNodes 1 with the document and the status', (status, dimension) => {
    const event = withDetail(DOCUMENTED_INVOCATION, { 'document-name': DOCUMENT_NAME, status });
    expect(published(statusFilters, JSON.stringify(event))).toEqual([
      { namespace: 'CdkImagePrefetcher', metricName: 'CommandNodes', value: 1, dimensions: { DocumentName: DOCUMENT_NAME, Status: dimension } },
    ]);
  });

  test.each(['Success', 'Failed'])('a node\'s association run %s: AssociationNodes 1 with the association and the status', (status) => {
    const event = withDetail(DOCUMENTED_INSTANCE_ASSOCIATION, { 'document-name': DOCUMENT_NAME, 'association-id': ASSOCIATION_ID, status });
    expect(published(statusFilters, JSON.stringify(event))).toEqual([
      { namespace: 'CdkImagePrefetcher', metricName: 'AssociationNodes', value: 1, dimensions: { AssociationId: ASSOCIATION_ID, Status: status } },
    ]);
  });

  test('every kept event counts exactly once, in one metric', () => {
    const kept = statusEventTable(DOCUMENT_NAME, ASSOCIATION_ID).filter(([, event]) => matchesPattern(eventPattern, event));
    expect(kept.length).toBeGreaterThan(5);
    for (const [name, event] of kept) {
      expect([name, published(statusFilters, JSON.stringify(event)).length]).toEqual([name, 1]);
    }
  });

  test('the filters would not count what the rule drops either (a command-level event)', () => {
    const command = statusEventTable(DOCUMENT_NAME, ASSOCIATION_ID).find(([name]) => name.startsWith('the whole command'))![1];
    expect(published(statusFilters, JSON.stringify(command))).toEqual([]);
  });
});

// --- the node's output --------------------------------------------------------------------------

const SCRIPT = path.join(__dirname, '..', '..', 'assets', 'prefetch-image.sh');
const IMAGE = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app';
const DIGEST = `sha256:${'3f'.repeat(32)}`;

/** A summary line in the script's format (checked against the script below). */
function summary(outcome: string, seconds: string, exit: number): string {
  return `prefetch: summary image=${IMAGE}:v42 digest=${exit === 0 && outcome !== 'nothing' ? DIGEST : '-'} outcome=${outcome} seconds=${seconds} exit=${exit}`;
}

/** A push's output on a node, in the script's wording, ending with the summary line. */
function transcript(outcome: PrefetchOutcome, seconds: string): string[] {
  const exits: { [outcome: string]: number } = {
    'failed': 1, 'bad-input': 2, 'auth-failed': 3, 'registry-failed': 4, 'containerd-unavailable': 6, 'not-found': 7,
  };
  return [
    `prefetch: mode=push image=${IMAGE}:v42 digest=${DIGEST}`,
    'prefetch: containerd ctr=2.x snapshotter=overlayfs root=/var/lib/containerd platform=linux/amd64',
    'prefetch: jitter: waiting 41233 ms before contacting ECR (1830 ms since the push)',
    'prefetch: credentials: ECR token obtained (2964 characters)',
    ...(outcome === PrefetchOutcome.PULLED ? [
      `prefetch: pulling ${IMAGE}@${DIGEST} (1024 MiB compressed) snapshotter=overlayfs`,
      `prefetch: pulled and unpacked ${IMAGE}@${DIGEST} in ${seconds}s (ctr images pull)`,
    ] : []),
    ...(outcome.value.startsWith('skipped-') ? [`prefetch: skipped (${outcome.value.slice(8)}): the reason`] : []),
    summary(outcome.value, seconds, exits[outcome.value] ?? 0),
  ];
}

/**
 * The log events the SSM agent makes of a node's stdout: each upload (once a second) sends the lines
 * written since the last one as ONE event (amazon-ssm-agent, cloudwatchlogsservice.go, getNextMessage),
 * so the summary line may share its event with the lines before it. `split` says after how many
 * lines each upload happened.
 */
function agentEvents(lines: string[], split: number[]): string[] {
  const events: string[] = [];
  let from = 0;
  for (const to of [...split, lines.length]) {
    if (to > from) events.push(lines.slice(from, to).join('\n'));
    from = to;
  }
  return events;
}

describe('the summary line reaches exactly one outcome metric', () => {
  test('the transcripts\' summary lines have the format of the script\'s summary line', () => {
    const format = /say "summary image=\$\{SUMMARY_IMAGE\} digest=\$\{SUMMARY_DIGESTS:--\} outcome=\$\{OUTCOME\} seconds=\$\{secs\} exit=\$\{rc\}"/;
    expect(fs.readFileSync(SCRIPT, 'utf8')).toMatch(format);
  });

  test('there is one outcome filter per outcome of the script, in the prefetcher\'s own namespace', () => {
    expect(outputFilters.map(f => f.MetricTransformations[0].MetricName).sort()).toEqual(PrefetchOutcome.ALL.map(o => o.value).sort());
    for (const f of outputFilters) expect(f.MetricTransformations[0].MetricNamespace).toMatch(/^CdkImagePrefetcher\/Contract-Prefetcher-/);
  });

  test.each(PrefetchOutcome.ALL.map(o => [o.value, o] as [string, PrefetchOutcome]))('outcome=%s, alone in its event or batched with the lines before it', (_name, outcome) => {
    const lines = transcript(outcome, '8.4');
    for (const split of [[], [lines.length - 1], [1, 3]]) {
      const points = agentEvents(lines, split).flatMap(event => published(outputFilters, event));
      expect(points.map(p => [p.metricName, p.value])).toEqual([[outcome.value, 1]]);
    }
  });

  test('the real script\'s summary line (bad input, run here) counts as bad-input', () => {
    let stdout = '';
    try {
      execFileSync('bash', [SCRIPT], { env: { PATH: process.env.PATH }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (error: any) {
      stdout = error.stdout;
      expect(error.status).toBe(2);
    }
    expect(stdout).toMatch(/^prefetch: summary .* outcome=bad-input seconds=[0-9.]+ exit=2$/m);
    expect(published(outputFilters, stdout.trimEnd()).map(p => p.metricName)).toEqual(['bad-input']);
  });

  test('lines that are not the summary count nothing, even when they name an outcome', () => {
    for (const line of [
      'prefetch: skipped (disk): /var/lib/containerd 91% used with the image estimate, limit 80%',
      'prefetch: error: outcome=failed is what the summary will say',
      'prefetch: summary image=- digest=- outcome=pulledx seconds=0.1 exit=0'.replace('pulledx', 'pul led'),
    ]) {
      expect(published(outputFilters, line)).toEqual([]);
    }
  });

  test('the patterns are case-sensitive, as documented', () => {
    expect(matchesFilterPattern(PrefetchOutcome.PULLED.filterPattern, summary('PULLED', '1.0', 0))).toBe(false);
    expect(matchesFilterPattern(PrefetchOutcome.PULLED.filterPattern, summary('pulled', '1.0', 0))).toBe(true);
  });
});
