// Central registry account: the repository, its pusher and the ImagePushForwarder live in the
// registry account; the ImagePrefetcher (on the registry's repository, imported by ARN) and the
// node live in a workload account. A push in the registry account is forwarded to the workload
// account's default bus, goes through the prefetcher's rule and push rollout there, and the node
// (with grantNodeAccess, and the forwarder's repository policy) pulls it from the registry
// account's ECR host. The assertions run in the workload account.
//
// Two accounts, from the environment (integ/README.md, "Central registry account"):
//   INTEG_REGISTRY_ACCOUNT, INTEG_WORKLOAD_ACCOUNT, INTEG_REGION (default us-east-1)
// Without them the app synthesizes with placeholder accounts: that is what the snapshot holds.
import { IntegTest } from '@aws-cdk/integ-tests-alpha';
import { App, Duration, Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  checkNodeImages, checkPushCommand, imageReferences, ImagePusher, integTestOptions, makeNode, NODE_TAG_KEY,
  pushFromAnotherAccount, testImage, waitUntilOnline,
} from './support';
import { ImagePrefetcher, ImagePushForwarder, NodeSelector } from '../src';

const REGION = process.env.INTEG_REGION ?? 'us-east-1';
const REGISTRY = { account: process.env.INTEG_REGISTRY_ACCOUNT ?? '111111111111', region: REGION };
const WORKLOAD = { account: process.env.INTEG_WORKLOAD_ACCOUNT ?? '222222222222', region: REGION };
// Fixed names: the workload account's stacks name them literally (no reference across accounts).
const REPOSITORY_NAME = 'cdk-image-prefetcher-integ/central';
const PUSHER_NAME = 'cdk-image-prefetcher-integ-central-pusher';

const app = new App();

// --- The registry account.
const registry = new Stack(app, 'ImagePrefetcherIntegCentralRegistry', { env: REGISTRY });
const repository = new ecr.Repository(registry, 'Repository', {
  repositoryName: REPOSITORY_NAME,
  removalPolicy: RemovalPolicy.DESTROY,
  emptyOnDelete: true,
});
new ImagePushForwarder(registry, 'ToWorkload', {
  repositories: [repository],
  accounts: [WORKLOAD.account],
  // Not the default, so that the deploy shows EventBridge takes a retry policy on an event bus
  // target (aws-cdk-lib's EventBus target does not offer one; no AWS page says either way).
  maxEventAge: Duration.hours(2),
});
const pusher = new ImagePusher(registry, 'Pusher', repository);
(pusher.function.node.defaultChild as lambda.CfnFunction).functionName = PUSHER_NAME;
// The workload account's assertions push through this function.
pusher.function.addPermission('WorkloadAssertions', { principal: new iam.AccountPrincipal(WORKLOAD.account) });

// --- The workload account.
/**
 * A stack with an explicit env would look its availability zones up (a context lookup; offline,
 * the placeholders `dummy1a`...): the node's VPC takes the region's first zone at deploy time instead,
 * as in an environment-agnostic stack.
 */
class WorkloadStack extends Stack {
  public get availabilityZones(): string[] {
    return [Fn.select(0, Fn.getAzs())];
  }
}
const workload = new WorkloadStack(app, 'ImagePrefetcherIntegCentralWorkload', { env: WORKLOAD });
const foreign = ecr.Repository.fromRepositoryArn(workload, 'RegistryRepository',
  `arn:aws:ecr:${REGION}:${REGISTRY.account}:repository/${REPOSITORY_NAME}`);
const prefetcher = new ImagePrefetcher(workload, 'Prefetcher', {
  repository: foreign,
  nodes: NodeSelector.tag(NODE_TAG_KEY, workload.stackName),
  jitter: Duration.seconds(0),
});
const node = makeNode(workload, prefetcher, workload.stackName);

const integ = new IntegTest(app, 'CentralRegistry', {
  testCases: [registry, workload],
  assertionStack: new Stack(app, 'ImagePrefetcherIntegCentralDeployAssert', { env: WORKLOAD }),
  ...integTestOptions(),
});

const image = testImage('central-registry-1');
const pusherArn = `arn:aws:lambda:${REGION}:${REGISTRY.account}:function:${PUSHER_NAME}`;

// The repository is empty when the node joins. A push in the registry account lands on the node
// of the workload account, under the registry account's host, through the push rollout there.
const online = waitUntilOnline(integ, node);
const pushed = online.next(pushFromAnotherAccount(integ, pusherArn, image, 'v1'));
const landed = checkNodeImages(integ, pushed, node, imageReferences(foreign, image, 'v1'), {
  waitFor: imageReferences(foreign, image, 'v1')[0],
});
checkPushCommand(integ, landed, prefetcher, image.digest);

app.synth();
