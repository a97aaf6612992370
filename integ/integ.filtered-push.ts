// Negative: pushes the rule must not act on leave the node without them. With
// TagFilter.exact('release'), a push of tag dev-1 and an untagged push must not be pulled;
// a later push of release must be (the positive control that proves events were flowing), and
// after it landed and a settling minute, neither of the others is on the node under any name.
import { IntegTest } from '@aws-cdk/integ-tests-alpha';
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { checkNodeImages, ImagePusher, integTestOptions, makeNode, NODE_TAG_KEY, testImage, waitUntilOnline } from './support';
import { ImagePrefetcher, NodeSelector, TagFilter } from '../src';

const app = new App();
const stack = new Stack(app, 'ImagePrefetcherIntegFilteredPush');
const repository = new ecr.Repository(stack, 'Repository', { removalPolicy: RemovalPolicy.DESTROY, emptyOnDelete: true });
const prefetcher = new ImagePrefetcher(stack, 'Prefetcher', {
  repository,
  nodes: NodeSelector.tag(NODE_TAG_KEY, stack.stackName),
  tagFilter: TagFilter.exact('release'),
  jitter: Duration.seconds(0),
});
const node = makeNode(stack, prefetcher, stack.stackName);
const pusher = new ImagePusher(stack, 'Pusher', repository);

const integ = new IntegTest(app, 'FilteredPush', { testCases: [stack], ...integTestOptions() });

const filteredOut = testImage('filtered-push-dev');
const untagged = testImage('filtered-push-untagged');
const release = testImage('filtered-push-release');

const online = waitUntilOnline(integ, node);
const pushed = online
  .next(pusher.push(integ, filteredOut, 'dev-1'))
  .next(pusher.push(integ, untagged))
  .next(pusher.push(integ, release, 'release'));
checkNodeImages(integ, pushed, node, [
  ...pusher.references(release, 'release'),
  ...pusher.absent(filteredOut, 'dev-1'),
], {
  waitFor: pusher.references(release, 'release')[0],
  settle: Duration.seconds(60),
  absentDigests: [filteredOut.digest, untagged.digest],
});

app.synth();
