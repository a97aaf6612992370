// Push path: an ECR push (PUSH/SUCCESS with a tag) reaches the node through the EventBridge rule,
// the push rollout (Step Functions -> SSM SendCommand with MaxConcurrency and MaxErrors) and the
// document, and the node holds exactly the pushed digest under the tag; the command ran with the
// prefetcher's rollout settings (ListCommands); a second push of the same tag moves the node's tag
// reference to the new digest, and the push leg recorded it as the newest image (DynamoDB). Deploying
// the rule also checks that EventBridge accepts its pattern (anything-but with a list of wildcards,
// $or, exists), which only event-ruler's documentation shows.
import { IntegTest } from '@aws-cdk/integ-tests-alpha';
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { checkMetricSum, checkNewestRecord, checkNodeImages, checkPushCommand, ImagePusher, integTestOptions, makeNode, NODE_TAG_KEY, testImage, waitUntilOnline } from './support';
import { ImagePrefetcher, NodeSelector, NodeStatus, PrefetchOutcome } from '../src';

const app = new App();
const stack = new Stack(app, 'ImagePrefetcherIntegPush');
const repository = new ecr.Repository(stack, 'Repository', { removalPolicy: RemovalPolicy.DESTROY, emptyOnDelete: true });
const prefetcher = new ImagePrefetcher(stack, 'Prefetcher', {
  repository,
  nodes: NodeSelector.tag(NODE_TAG_KEY, stack.stackName),
  jitter: Duration.seconds(0),
  // issue 13: the nodes' output too, so that the summary line's outcome metric is checked
  nodeOutputLogs: true,
});
const node = makeNode(stack, prefetcher, stack.stackName);
const pusher = new ImagePusher(stack, 'Pusher', repository);

const integ = new IntegTest(app, 'PushPath', { testCases: [stack], ...integTestOptions() });

const first = testImage('push-path-1');
const second = testImage('push-path-2');

// The repository is empty when the node joins: the association finds nothing to pull.
const online = waitUntilOnline(integ, node);
const pushFirst = online.next(pusher.push(integ, first, 'v1'));
const firstLanded = checkNodeImages(integ, pushFirst, node, pusher.references(first, 'v1'), {
  waitFor: pusher.references(first, 'v1')[0],
});
const rolloutChecked = checkPushCommand(integ, firstLanded, prefetcher, first.digest);
// The metrics count the node (issue 13): its join (the association on an empty repository: Success,
// outcome nothing), the first push's command (Success) and its summary line (outcome=pulled), once each.
const joinCounted = checkMetricSum(integ, rolloutChecked, prefetcher.metricJoinNodes(NodeStatus.SUCCESS), 1);
const pushCounted = checkMetricSum(integ, joinCounted, prefetcher.metricNodesSucceeded(), 1);
const pulledCounted = checkMetricSum(integ, pushCounted, prefetcher.nodeOutput!.metricOutcome(PrefetchOutcome.PULLED), 1);
const pushSecond = pulledCounted.next(pusher.push(integ, second, 'v1'));
const secondLanded = checkNodeImages(integ, pushSecond, node, [
  ...pusher.references(second, 'v1'),
  // the first image stays (digest reference) until the kubelet's image GC removes it
  pusher.references(first, 'v1')[1],
], {
  waitFor: pusher.references(second, 'v1')[0],
});

checkNewestRecord(integ, secondLanded, prefetcher, second.digest, 'v1');

app.synth();
