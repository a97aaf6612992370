import * as fs from 'fs';
import * as path from 'path';
import { Arn, Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, IConstruct } from 'constructs';
import { ECR_REPOSITORY_NAME, OCI_TAG, stackSingleton } from './validation';

/** Where the node-side script lives in the package (a real shell file, linted and tested on its own). */
const SCRIPT_PATH = path.join(__dirname, '..', 'assets', 'prefetch-image.sh');

/**
 * A pattern that matches the whole value and nothing else, in any regular-expression dialect SSM may
 * use: `$` also matches before a final line break in Java, PCRE, Python and .NET (not in JavaScript),
 * so `^...$` lets "v1\n" through there; `(?![\s\S])` (no character follows) means the end everywhere.
 */
function whole(alternatives: string): string {
  return `^(?:${alternatives})(?![\\s\\S])`;
}

const TAG = OCI_TAG.source.slice(1, -1);
const TAG_LIST = whole(`|${TAG}(,${TAG}){0,19}`);

/** One parameter of the SSM Command document. */
interface ParameterSpec {
  readonly name: string;
  readonly description: string;
  readonly allowedPattern: string;
  readonly default?: string;
  readonly minChars?: number;
  readonly maxChars?: number;
  /** The shell variable the script reads; undefined for parameters SSM itself consumes. */
  readonly variable?: string;
}

/**
 * The document's parameters. Every one is a String with an allowedPattern, so that SSM
 * refuses a value that is not a valid reference before anything runs on a node; the
 * script validates each value again before use.
 */
const PARAMETERS: ParameterSpec[] = [
  {
    name: 'accountId',
    description: 'AWS account that owns the ECR registry (12 digits).',
    allowedPattern: whole('[0-9]{12}'),
    variable: 'PREFETCH_ACCOUNT_ID',
  },
  {
    name: 'region',
    description: 'Region of the ECR registry, for example us-east-1.',
    allowedPattern: whole('[a-z]{2}(-[a-z]+)+-[0-9]{1,2}'),
    variable: 'PREFETCH_REGION',
  },
  {
    name: 'repositoryName',
    description: 'ECR repository name (2 to 256 characters).',
    allowedPattern: whole(ECR_REPOSITORY_NAME.source.slice(1, -1)),
    minChars: 2,
    maxChars: 256,
    variable: 'PREFETCH_REPOSITORY',
  },
  {
    name: 'imageTags',
    description: 'Comma-separated tags to prefetch (up to 20). Empty: the most recently pushed tagged image.',
    allowedPattern: TAG_LIST,
    default: '',
    variable: 'PREFETCH_IMAGE_TAGS',
  },
  {
    name: 'imageDigest',
    description: 'Digest of the pushed manifest (sha256:<64 hex>). When set, imageTags holds exactly the one tag it was pushed with.',
    allowedPattern: whole('|sha256:[a-f0-9]{64}'),
    default: '',
    variable: 'PREFETCH_IMAGE_DIGEST',
  },
  {
    name: 'tagPrefixes',
    description: 'With empty imageTags: only consider images with a tag starting with one of these comma-separated prefixes.',
    allowedPattern: TAG_LIST,
    default: '',
    variable: 'PREFETCH_TAG_PREFIXES',
  },
  {
    name: 'recordTable',
    description: 'With empty imageTags: the DynamoDB table where the push leg records the newest image (read first; the repository is searched only while nothing is recorded). Empty: search the repository.',
    allowedPattern: whole('|[a-zA-Z0-9_.-]{3,255}'),
    default: '',
    variable: 'PREFETCH_RECORD_TABLE',
  },
  {
    name: 'recordKey',
    description: 'The key of this prefetcher\'s item in recordTable.',
    allowedPattern: whole('|[a-zA-Z0-9_.-]{1,255}'),
    default: '',
    variable: 'PREFETCH_RECORD_KEY',
  },
  {
    name: 'jitterSeconds',
    description: 'Wait a random 0..N seconds before contacting ECR, so that a fleet does not pull at the same instant (at most 3600).',
    allowedPattern: whole('[0-9]{1,4}'),
    default: '90',
    variable: 'PREFETCH_JITTER_SECONDS',
  },
  {
    name: 'eventTime',
    description: 'Time of the push (the EventBridge event\'s time, UTC). When set, the jitter counts from it: a node that SSM reached late in its rollout ramp does not wait a whole jitter more.',
    allowedPattern: whole('|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'),
    default: '',
    variable: 'PREFETCH_EVENT_TIME',
  },
  {
    name: 'maxDiskUsagePercent',
    description: 'Skip the pull when the filesystem holding containerd is fuller than this percentage.',
    allowedPattern: whole('[1-9]|[1-9][0-9]|100'),
    default: '80',
    variable: 'PREFETCH_MAX_DISK_PERCENT',
  },
  {
    name: 'pinImages',
    description: 'Label the image io.cri-containerd.pinned=pinned so that kubelet image garbage collection keeps it.',
    allowedPattern: whole('true|false'),
    default: 'false',
    variable: 'PREFETCH_PIN',
  },
  {
    name: 'maxAttempts',
    description: 'Attempts against ECR on throttling and transient network errors, with exponential backoff.',
    allowedPattern: whole('[1-9]|10'),
    default: '5',
    variable: 'PREFETCH_MAX_ATTEMPTS',
  },
  {
    name: 'executionTimeout',
    description: 'Seconds before SSM stops the script (at most 172800).',
    allowedPattern: whole('[1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[0-1][0-9]{3}|172[0-7][0-9]{2}|172800'),
    default: '3600',
    // SSM consumes it (timeoutSeconds); the script reads it too, to end its waits before it.
    variable: 'PREFETCH_EXECUTION_TIMEOUT',
  },
];

/**
 * The SSM Command document (schemaVersion 2.2) that carries the node-side prefetch
 * script. One per stack: every `ImagePrefetcher` in the stack shares it.
 */
export class PrefetchDocument extends Construct {
  /** The names of the document's parameters. */
  public static readonly PARAMETER_NAMES: string[] = PARAMETERS.map(p => p.name);

  /**
   * The stack's shared prefetch document, created on first use.
   *
   * @param scope any construct in the stack
   */
  public static of(scope: IConstruct): PrefetchDocument {
    return stackSingleton(scope, 'ImagePrefetcherDocument', (stack, id) => new PrefetchDocument(stack, id));
  }

  /**
   * The lines of a shell script but those that hold only a comment.
   * @internal
   */
  public static _withoutCommentLines(lines: string[]): string[] {
    return lines.filter(line => !/^\s*#/.test(line));
  }

  /** The CloudFormation document resource. */
  public readonly resource: ssm.CfnDocument;

  /** The document name (generated by CloudFormation). */
  public readonly documentName: string;

  /** The document ARN, the target of the EventBridge rules. */
  public readonly documentArn: string;

  private constructor(scope: Construct, id: string) {
    super(scope, id);
    this.resource = new ssm.CfnDocument(this, 'Resource', {
      documentType: 'Command',
      documentFormat: 'JSON',
      // A new version keeps the name (and so the rules and associations that use it) stable.
      updateMethod: 'NewVersion',
      content: renderContent(),
    });
    this.documentName = this.resource.ref;
    this.documentArn = Arn.format({ service: 'ssm', resource: 'document', resourceName: this.documentName }, Stack.of(this));
  }
}

/** The document content: parameters and the script with their assignments inserted after its shebang. */
function renderContent(): any {
  const script = fs.readFileSync(SCRIPT_PATH, 'utf8').replace(/\n+$/, '').split('\n');
  const [shebang, ...code] = script;
  // Without its comment lines (a third of the file, for its maintainers): SSM's 64 KB limit holds
  // the code. test/document-comments.test.ts checks that every function's code stays the same.
  const body = PrefetchDocument._withoutCommentLines(code);
  const assignments = PARAMETERS
    .filter(p => p.variable)
    // allowedPattern excludes quotes, so a single-quoted assignment cannot be broken out of.
    .map(p => `${p.variable}='{{ ${p.name} }}'`);
  const parameters: any = {};
  for (const p of PARAMETERS) {
    parameters[p.name] = {
      type: 'String',
      description: p.description,
      allowedPattern: p.allowedPattern,
      ...(p.default !== undefined ? { default: p.default } : {}),
      ...(p.minChars !== undefined ? { minChars: p.minChars } : {}),
      ...(p.maxChars !== undefined ? { maxChars: p.maxChars } : {}),
    };
  }
  return {
    schemaVersion: '2.2',
    description: 'cdk-image-prefetcher: pull one ECR image into containerd (namespace k8s.io) so that the kubelet starts pods without pulling.',
    parameters,
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: 'prefetchImage',
        precondition: { StringEquals: ['platformType', 'Linux'] },
        inputs: {
          timeoutSeconds: '{{ executionTimeout }}',
          runCommand: [shebang, ...assignments, ...body],
        },
      },
    ],
  };
}
