// Helpers shared by the integ tests (deliberately not named integ.*: integ-runner would run it).
//
// Everything here synthesizes offline: the test image is built in memory at synth time
// (no Docker, no registry), the node is an EC2 instance from an SSM public parameter
// (resolved by CloudFormation at deploy time, not by a lookup), and every Lambda is inline.
import * as crypto from 'crypto';
import * as zlib from 'zlib';
import { ExpectedResult, IApiCall, IntegTest, IntegTestProps, InvocationType, Match } from '@aws-cdk/integ-tests-alpha';
import { CustomResource, Duration, Stack, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ImagePrefetcher } from '../src';

/** The EC2 tag that makes the test instance a "node" of the prefetcher. */
export const NODE_TAG_KEY = 'cdk-image-prefetcher:integ-node';

// ---------------------------------------------------------------------------------------
// A tiny, deterministic OCI image, built at synth time.

/** One content-addressed blob of a test image. */
export interface Blob {
  readonly digest: string;
  /** The bytes, base64. */
  readonly data: string;
}

/** A single-platform OCI image whose digests are known at synth time. */
export interface TestImage {
  /** The manifest digest (what ECR reports as image-digest, what containerd lists). */
  readonly digest: string;
  /** The manifest, exactly as pushed (its sha256 is `digest`). */
  readonly manifest: string;
  readonly mediaType: string;
  /** Config and layer blobs. */
  readonly blobs: Blob[];
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * An image with one layer holding `/prefetch-marker` = `marker`: a different marker gives a
 * different digest. Every byte is fixed (tar header fields, gzip header, a "stored" deflate
 * block), so the digests do not depend on the machine's zlib and the snapshots stay stable.
 */
export function testImage(marker: string, architecture = 'amd64'): TestImage {
  const tar = tarFile('prefetch-marker', Buffer.from(`${marker}\n`));
  const layer = gzipStored(tar);
  const config = Buffer.from(JSON.stringify({
    architecture,
    os: 'linux',
    config: { Labels: { 'cdk-image-prefetcher.integ/marker': marker } },
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
  }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  });
  return {
    digest: sha256(Buffer.from(manifest)),
    manifest,
    mediaType: OCI_MANIFEST,
    blobs: [config, layer].map(b => ({ digest: sha256(b), data: b.toString('base64') })),
  };
}

function sha256(data: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/** A POSIX ustar archive with one regular file (mode 0644, owner 0:0, mtime 0). */
export function tarFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const put = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, '0') + '\0';
  put(0, 100, name);
  put(100, 8, octal(0o644, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(content.length, 12));
  put(136, 12, octal(0, 12));
  put(148, 8, ' '.repeat(8)); // the checksum is computed with its own field as spaces
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  const padded = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  content.copy(padded);
  return Buffer.concat([header, padded, Buffer.alloc(1024)]);
}

/** gzip (RFC 1952) of `data` with uncompressed ("stored") deflate blocks: valid and byte-for-byte fixed. */
export function gzipStored(data: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])];
  for (let offset = 0; offset === 0 || offset < data.length; offset += 0xffff) {
    const chunk = data.subarray(offset, offset + 0xffff);
    const block = Buffer.alloc(5);
    block[0] = offset + 0xffff >= data.length ? 1 : 0; // BFINAL on the last block, BTYPE 00
    block.writeUInt16LE(chunk.length, 1);
    block.writeUInt16LE(0xffff - chunk.length, 3); // NLEN, the one's complement of LEN
    parts.push(block, chunk);
  }
  // The trailer (CRC-32 and length of the data) is the same whatever compressed the data:
  // take it from the machine's zlib.
  parts.push(zlib.gzipSync(data).subarray(-8));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------
// Pushing test images to ECR, through the ECR API (each PutImage emits an ECR push event).

/**
 * The pusher: uploads the blobs it is given and puts the manifest (with a tag, or untagged).
 * Invoked directly by the assertions, or as a CloudFormation custom resource for images that
 * must exist before something else is created. Inline, so that synthesis needs no bundling.
 */
export const PUSHER_CODE = `
const ecr = new (require('@aws-sdk/client-ecr').ECRClient)({});
const c = require('@aws-sdk/client-ecr');
const https = require('https');
const repositoryName = process.env.REPOSITORY_NAME;
async function push(p) {
  for (const b of p.blobs) {
    const have = await ecr.send(new c.BatchCheckLayerAvailabilityCommand({ repositoryName, layerDigests: [b.digest] }));
    if (have.layers && have.layers[0] && have.layers[0].layerAvailability === 'AVAILABLE') continue;
    const data = Buffer.from(b.data, 'base64');
    const { uploadId } = await ecr.send(new c.InitiateLayerUploadCommand({ repositoryName }));
    await ecr.send(new c.UploadLayerPartCommand({ repositoryName, uploadId, partFirstByte: 0, partLastByte: data.length - 1, layerPartBlob: data }));
    await ecr.send(new c.CompleteLayerUploadCommand({ repositoryName, uploadId, layerDigests: [b.digest] }));
  }
  try {
    const r = await ecr.send(new c.PutImageCommand({ repositoryName, imageManifest: p.manifest,
      imageManifestMediaType: p.mediaType, imageTag: p.tag || undefined }));
    return { digest: r.image.imageId.imageDigest, tag: p.tag || '' };
  } catch (e) {
    if (e.name !== 'ImageAlreadyExistsException') throw e;
    return { digest: p.digest, tag: p.tag || '' };
  }
}
function respond(event, status, reason, data) {
  const body = JSON.stringify({ Status: status, Reason: reason, PhysicalResourceId: repositoryName + ':' + (event.ResourceProperties.tag || event.ResourceProperties.digest),
    StackId: event.StackId, RequestId: event.RequestId, LogicalResourceId: event.LogicalResourceId, Data: data });
  const u = new URL(event.ResponseURL);
  return new Promise((resolve, reject) => {
    const req = https.request({ hostname: u.hostname, path: u.pathname + u.search, method: 'PUT',
      headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) } }, res => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end(body);
  });
}
exports.handler = async (event) => {
  if (!event.RequestType) return push(event);
  try {
    // Delete does nothing: the repository is emptied when it is deleted.
    const data = event.RequestType === 'Delete' ? {} : await push(event.ResourceProperties);
    await respond(event, 'SUCCESS', '', data);
  } catch (e) {
    console.log(e);
    await respond(event, 'FAILED', String(e), {});
  }
};
`;

/** What the pusher is asked to push. */
interface PushRequest {
  readonly tag: string;
  readonly digest: string;
  readonly manifest: string;
  readonly mediaType: string;
  readonly blobs: Blob[];
}

function pushRequest(image: TestImage, tag: string | undefined): PushRequest {
  return { tag: tag ?? '', digest: image.digest, manifest: image.manifest, mediaType: image.mediaType, blobs: image.blobs };
}

/** A Lambda function that pushes test images to one repository. */
export class ImagePusher extends Construct {
  public readonly function: lambda.IFunction;

  constructor(scope: Construct, id: string, private readonly repository: ecr.IRepository) {
    super(scope, id);
    const fn = new lambda.Function(this, 'Function', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(PUSHER_CODE),
      timeout: Duration.minutes(2),
      description: 'cdk-image-prefetcher integ: pushes small test images to ECR',
      environment: { REPOSITORY_NAME: repository.repositoryName },
    });
    repository.grantPush(fn);
    this.function = fn;
  }

  /** Pushes the image at deploy time (a custom resource): the image exists once this is created. */
  public pushAtDeploy(id: string, image: TestImage, tag: string): CustomResource {
    return new CustomResource(this, id, {
      serviceToken: this.function.functionArn,
      resourceType: 'Custom::IntegTestImagePush',
      properties: pushRequest(image, tag),
    });
  }

  /** An assertion step that pushes the image (untagged when `tag` is undefined). */
  public push(integ: IntegTest, image: TestImage, tag?: string): IApiCall {
    return integ.assertions.invokeFunction({
      functionName: this.function.functionName,
      invocationType: InvocationType.REQUEST_RESPONSE,
      payload: JSON.stringify(pushRequest(image, tag)),
    }).expect(ExpectedResult.objectLike({
      Payload: { digest: image.digest, tag: tag ?? '' },
    }));
  }

  /** The two references a node holds for a prefetched image: `URI:tag` and `URI@digest`, both to the digest. */
  public references(image: TestImage, tag: string): ExpectedImage[] {
    return imageReferences(this.repository, image, tag);
  }

  /** References a node must not hold: the tag, and the digest. */
  public absent(image: TestImage, tag: string): ExpectedImage[] {
    return [
      { reference: this.repository.repositoryUriForTag(tag) },
      { reference: this.repository.repositoryUriForDigest(image.digest) },
    ];
  }
}

/** The two references a node holds for an image of `repository` prefetched under `tag`. */
export function imageReferences(repository: ecr.IRepository, image: TestImage, tag: string): ExpectedImage[] {
  return [
    { reference: repository.repositoryUriForTag(tag), digest: image.digest },
    { reference: repository.repositoryUriForDigest(image.digest), digest: image.digest },
  ];
}

/**
 * An assertion step that pushes the image with the pusher function of ANOTHER account, named by
 * its ARN (a literal: a stack of another account cannot reference it); the function's resource
 * policy must allow the assertion stack's account. integ-tests-alpha's invokeFunction would add a
 * Lambda permission on the function from the assertion stack, which CloudFormation cannot do in
 * another account: this calls Lambda Invoke directly, with InvokeFunction on that one function.
 */
export function pushFromAnotherAccount(integ: IntegTest, functionArn: string, image: TestImage, tag: string): IApiCall {
  const call = integ.assertions.awsApiCall('Lambda', 'invoke', {
    FunctionName: functionArn,
    InvocationType: InvocationType.REQUEST_RESPONSE,
    Payload: JSON.stringify(pushRequest(image, tag)),
  });
  call.provider.addToRolePolicy({ Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [functionArn] });
  return call.expect(ExpectedResult.objectLike({ Payload: { digest: image.digest, tag } }));
}

// ---------------------------------------------------------------------------------------
// The node: an EC2 instance with containerd and the SSM agent, tagged like a worker node.

/** Properties of a {@link TestNode}. */
export interface TestNodeProps {
  /** The value of {@link NODE_TAG_KEY} the node carries. */
  readonly tagValue: string;
}

/**
 * An EC2 instance that plays an EKS worker node for the prefetcher: Amazon Linux 2023 with
 * containerd (from the distribution; the EKS AMI would need nodeadm and a cluster to start
 * containerd), the SSM agent and AWS CLI v2 of the AMI, and the node tag.
 *
 * It boots in the order of an EKS AL2023 node: the SSM agent starts with the instance and may
 * receive the association at once, while containerd starts later, from cloud-final (on EKS,
 * nodeadm-run.service is After=cloud-final.service and starts containerd). The script waits for
 * containerd and its CRI plugin (a quarter of the execution timeout, at most 10 minutes).
 * In a public subnet, without NAT gateway or VPC endpoints, to keep the cost to the instance.
 */
export class TestNode extends Construct {
  public readonly instance: ec2.Instance;
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: TestNodeProps) {
    super(scope, id);
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 1,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }],
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    // containerd (installed and started by cloud-init's final stage) comes up after the SSM agent.
    const userData = ec2.UserData.custom([
      '#cloud-config',
      'packages: [containerd, jq]',
      'runcmd:',
      '  - [systemctl, enable, --now, containerd]',
    ].join('\n'));
    this.instance = new ec2.Instance(this, 'Instance', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL),
      machineImage: ec2.MachineImage.latestAmazonLinux2023(),
      role: this.role,
      userData,
      requireImdsv2: true,
      associatePublicIpAddress: true,
    });
    Tags.of(this.instance).add(NODE_TAG_KEY, props.tagValue);
  }
}

// ---------------------------------------------------------------------------------------
// Assertion steps on the node, through SSM.

/** Waits until the node's SSM agent is online (containerd may start later, see {@link TestNode}). */
export function waitUntilOnline(integ: IntegTest, node: TestNode): IApiCall {
  return integ.assertions.awsApiCall('SSM', 'describeInstanceInformation', {
    Filters: [{ Key: 'InstanceIds', Values: [node.instance.instanceId] }],
  }).expect(ExpectedResult.objectLike({
    InstanceInformationList: Match.arrayWith([Match.objectLike({ PingStatus: 'Online' })]),
  })).waitForAssertions({ totalTimeout: Duration.minutes(15), interval: Duration.seconds(20), backoffRate: 1 });
}

/** What a node is expected to hold: for each image reference, its digest, or `absent`. */
export interface ExpectedImage {
  readonly reference: string;
  /** The manifest digest, or undefined when the node must not have the reference. */
  readonly digest?: string;
}

/** Options of {@link checkNodeImages}. */
export interface CheckOptions {
  /** First wait (up to 5 minutes) until this reference points to this digest on the node. */
  readonly waitFor?: ExpectedImage;
  /** Then wait this long more, so that anything that would still arrive has arrived. */
  readonly settle?: Duration;
  /** Digests that no image on the node may have (reported as `digest <d>: <n> images`). */
  readonly absentDigests?: string[];
}

/**
 * The shell commands that report which digest each reference points to in containerd's k8s.io
 * namespace (the kubelet's), and the exact output expected. Plain strings (tokens allowed), so
 * that test/contract/node-chain.sh runs the same commands against a real containerd offline.
 */
export function nodeImagesCheck(expected: ExpectedImage[], options: CheckOptions = {}): { commands: string[]; stdout: string } {
  // awk, not ctr's filter syntax, so that references are compared as plain strings.
  const digestOf = (ref: string) => `$(ctr -n k8s.io images ls | awk -v r='${ref}' '$1 == r {print $3}')`;
  const commands = [
    'set -u',
    ...(options.waitFor ? [
      `for i in $(seq 60); do [ "${digestOf(options.waitFor.reference)}" = '${options.waitFor.digest}' ] && break; sleep 5; done`,
    ] : []),
    ...(options.settle ? [`sleep ${options.settle.toSeconds()}`] : []),
    ...expected.map(e => `d="${digestOf(e.reference)}"; echo "${e.reference} \${d:-absent}"`),
    ...(options.absentDigests ?? []).map(d =>
      `echo "digest ${d}: $(ctr -n k8s.io images ls | awk -v d='${d}' '$3 == d' | wc -l) images"`),
  ];
  const stdout = [
    ...expected.map(e => `${e.reference} ${e.digest ?? 'absent'}`),
    ...(options.absentDigests ?? []).map(d => `digest ${d}: 0 images`),
  ].map(line => `${line}\n`).join('');
  return { commands, stdout };
}

/**
 * Asks the node (SSM Run Command, AWS-RunShellScript) what {@link nodeImagesCheck} reports and
 * asserts the exact answer. Runs after `after`; returns the last step, to chain the next one on.
 */
export function checkNodeImages(integ: IntegTest, after: IApiCall, node: TestNode, expected: ExpectedImage[], options: CheckOptions = {}): IApiCall {
  const { commands, stdout } = nodeImagesCheck(expected, options);
  const send = integ.assertions.awsApiCall('SSM', 'sendCommand', {
    DocumentName: 'AWS-RunShellScript',
    InstanceIds: [node.instance.instanceId],
    Parameters: { commands },
  });
  after.next(send);
  return send.next(integ.assertions.awsApiCall('SSM', 'getCommandInvocation', {
    CommandId: send.getAttString('Command.CommandId'),
    InstanceId: node.instance.instanceId,
  }).expect(ExpectedResult.objectLike({
    Status: 'Success',
    StandardOutputContent: stdout,
  })).waitForAssertions({ totalTimeout: Duration.minutes(12), interval: Duration.seconds(15), backoffRate: 1 }));
}

/**
 * Asserts, in the account, that a push's command went out through the push rollout with the
 * prefetcher's rollout settings: SSM ListCommands for the prefetch document lists the command of
 * `digest` (its comment names the digest) with this MaxConcurrency and MaxErrors. (EventBridge's
 * Run Command target could not set them: the command would show SendCommand's defaults, 50 and 0.)
 */
export function checkPushCommand(integ: IntegTest, after: IApiCall, prefetcher: ImagePrefetcher, digest: string): IApiCall {
  const list = integ.assertions.awsApiCall('SSM', 'listCommands', {
    Filters: [{ key: 'DocumentName', value: prefetcher.document.ref }],
  }).expect(ExpectedResult.objectLike({
    Commands: Match.arrayWith([Match.objectLike({
      Comment: `cdk-image-prefetcher ${digest}`,
      MaxConcurrency: prefetcher.pushRollout.maxConcurrency,
      MaxErrors: prefetcher.pushRollout.maxErrors,
    })]),
  })).waitForAssertions({ totalTimeout: Duration.minutes(5), interval: Duration.seconds(15), backoffRate: 1 });
  after.next(list);
  return list;
}

/**
 * The push leg recorded the push as the prefetcher's newest image (DynamoDB GetItem on its item):
 * the conditional writes of the state machine ran in a real account.
 */
export function checkNewestRecord(integ: IntegTest, after: IApiCall, prefetcher: ImagePrefetcher, digest: string, tag: string): IApiCall {
  if (!prefetcher.newestImageRecord) throw new Error('this prefetcher records no newest image (named tags for joining nodes)');
  const get = integ.assertions.awsApiCall('DynamoDB', 'getItem', {
    TableName: prefetcher.newestImageRecord.table.tableName,
    Key: { prefetcher: { S: prefetcher.recordKey } },
  }).expect(ExpectedResult.objectLike({
    Item: Match.objectLike({ digest: { S: digest }, tags: { SS: Match.arrayWith([tag]) } }),
  })).waitForAssertions({ totalTimeout: Duration.minutes(5), interval: Duration.seconds(15), backoffRate: 1 });
  after.next(get);
  return get;
}

/** The node tag value of a stack: unique per test stack, so that parallel tests do not meet. */
export function nodeTagValue(stack: Stack): string {
  return stack.stackName;
}

/** Grants the node role what the prefetcher needs on the node (used by every scenario). */
export function makeNode(scope: Construct, prefetcher: ImagePrefetcher, tagValue: string): TestNode {
  const node = new TestNode(scope, 'Node', { tagValue });
  prefetcher.grantNodeAccess(node.role);
  return node;
}

/**
 * IntegTest options every scenario uses: deploy the current code only (no deploy of the
 * committed snapshot first: it would double the time and the cost), and destroy without asking.
 */
export function integTestOptions(): Omit<IntegTestProps, 'testCases'> {
  return {
    diffAssets: false,
    stackUpdateWorkflow: false,
    // The document's content changes with every change of the node script; the CloudFormation spec
    // marks Content "may replace", although UpdateMethod NewVersion updates the document in place.
    allowDestroy: ['AWS::SSM::Document'],
    cdkCommandOptions: { destroy: { args: { force: true } } },
  };
}

/**
 * Asserts, in the account, that a CloudWatch metric counted exactly `sum` over the test's lifetime
 * (issue 13: the node's status event or summary line reached the metric filters). The parameters are
 * fixed at synth time, so the window is wide (2026 to 2036) and the period the smallest multiple of an
 * hour that keeps it within GetMetricStatistics' 1,440 data points; metric filters publish within
 * minutes, hence the waiter.
 */
export function checkMetricSum(integ: IntegTest, after: IApiCall, metric: cloudwatch.Metric, sum: number): IApiCall {
  const start = Date.UTC(2026, 0, 1) / 1000;
  const end = Date.UTC(2036, 0, 1) / 1000;
  const period = Math.ceil((end - start) / 1440 / 3600) * 3600;
  const config = metric.toMetricConfig().metricStat!;
  const get = integ.assertions.awsApiCall('CloudWatch', 'getMetricStatistics', {
    Namespace: config.namespace,
    MetricName: config.metricName,
    Dimensions: (config.dimensions ?? []).map(d => ({ Name: d.name, Value: d.value })),
    StartTime: new Date(start * 1000).toISOString(),
    EndTime: new Date(end * 1000).toISOString(),
    Period: period,
    Statistics: ['Sum'],
  }).expect(ExpectedResult.objectLike({
    Datapoints: [Match.objectLike({ Sum: sum })],
  })).waitForAssertions({ totalTimeout: Duration.minutes(10), interval: Duration.seconds(30), backoffRate: 1 });
  after.next(get);
  return get;
}
