// New-node path: images exist before the node does; when the node joins, the State Manager
// association pulls the most recently pushed tagged image (v2, not v1), and reports Success.
// The rule is created after both pushes, so no push event can have done it.
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { checkNodeImages, ImagePusher, integTestOptions, makeNode, NODE_TAG_KEY, testImage, waitUntilOnline } from './support';
import { ImagePrefetcher, NodeSelector } from '../src';

const app = new App();
const stack = new Stack(app, 'ImagePrefetcherIntegNewNode');
const repository = new ecr.Repository(stack, 'Repository', { removalPolicy: RemovalPolicy.DESTROY, emptyOnDelete: true });
const pusher = new ImagePusher(stack, 'Pusher', repository);
const older = testImage('new-node-v1');
const newer = testImage('new-node-v2');
const pushOlder = pusher.pushAtDeploy('PushV1', older, 'v1');
const pushNewer = pusher.pushAtDeploy('PushV2', newer, 'v2');
pushNewer.node.addDependency(pushOlder);

const prefetcher = new ImagePrefetcher(stack, 'Prefetcher', {
  repository,
  nodes: NodeSelector.tag(NODE_TAG_KEY, stack.stackName),
  jitter: Duration.seconds(0),
});
prefetcher.node.addDependency(pushNewer);
const node = makeNode(stack, prefetcher, stack.stackName);
node.node.addDependency(pushNewer);

const integ = new IntegTest(app, 'NewNodePath', { testCases: [stack], ...integTestOptions() });

const online = waitUntilOnline(integ, node);
const applied = online.next(integ.assertions.awsApiCall('SSM', 'describeInstanceAssociationsStatus', {
  InstanceId: node.instance.instanceId,
}).expect(ExpectedResult.objectLike({
  InstanceAssociationStatusInfos: Match.arrayWith([Match.objectLike({
    AssociationId: prefetcher.association.attrAssociationId,
    Status: 'Success',
  })]),
})).waitForAssertions({ totalTimeout: Duration.minutes(10), interval: Duration.seconds(15), backoffRate: 1 }));
checkNodeImages(integ, applied, node, [
  ...pusher.references(newer, 'v2'),
  ...pusher.absent(older, 'v1'),
]);

app.synth();
