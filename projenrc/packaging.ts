import { awscdk, TaskShell } from 'projen';
import { WorkflowSteps } from 'projen/lib/github';
import { JobPermission } from 'projen/lib/github/workflows-model';

/**
 * Multi-language packaging (npm, Python, Java, Go built here; .NET generated), jsii-rosetta
 * and release settings. Owned by the packaging work (issue "Every jsii language").
 */
export function configurePackaging(project: awscdk.AwsCdkConstructLibrary): void {
  configurePackageTask(project);
  configureRosetta(project);
  configureCompat(project);
  configureConsumersJob(project);

  // The consumer apps are excluded from the dev tsconfig (they are not part of the library),
  // but the TypeScript reference is type-checked and linted like the other examples.
  project.tsconfigDev.file.addOverride('files', ['examples/consumers/reference.ts']);

  project.gitignore.exclude(
    // jsii-rosetta's translations (rebuilt by every compile; shipped in the npm package).
    '.jsii.tabl.json',
    '/examples/consumers/**/__pycache__/',
    // The Go consumer's working copy of go.mod (see examples/consumers/run.sh).
    '/examples/consumers/go/run.go.*',
  );
}

/**
 * `package` builds every language this machine can build, in and out of CI.
 *
 * projen's default packages only JS when CI is set (the other languages are built by
 * separate workflow jobs); here the same task does the same thing everywhere, so a local
 * `npx projen build` and the CI build produce the same dist/. The per-language tasks stay
 * (the release workflow's publish jobs call them on runners that have each toolchain).
 */
function configurePackageTask(project: awscdk.AwsCdkConstructLibrary): void {
  const task = (name: string) => {
    const t = project.tasks.tryFind(name);
    if (!t) throw new Error(`projen task ${name} not found`);
    return t;
  };

  // Maven: use the default local repository (~/.m2) instead of pacmak's throw-away one, so
  // that repeated builds and the Java consumer app reuse the downloaded jars.
  const java = task('package:java');
  java.reset('jsii-pacmak -v --target java --maven-local-repository="${MAVEN_LOCAL_REPOSITORY:-$HOME/.m2/repository}"');
  java.shell = TaskShell.bash();

  // Go: generate the module only. pacmak's own check (`go mod tidy && go build`) needs
  // aws-cdk-go v2.245.0 from the Go proxy, which the project's machines cannot always
  // download; the Go consumer app (examples/consumers/go) compiles and runs the generated
  // module instead, and says which aws-cdk-go it used.
  task('package:go').reset('jsii-pacmak -v --target go --code-only');

  // .NET: the dotnet SDK and NuGet are not available on the project's machines, so the
  // build only generates the C# code; the release workflow's NuGet job builds the real
  // package (`package:dotnet`) on a runner with the SDK.
  const dotnetCode = project.addTask('package:dotnet:code', {
    description: 'Generate the .NET code without building it (no dotnet SDK needed)',
    exec: 'jsii-pacmak -v --target dotnet --code-only',
  });

  const packageAll = task('package-all');
  packageAll.reset();
  for (const lang of ['js', 'python', 'java', 'go']) {
    packageAll.spawn(task(`package:${lang}`));
  }
  packageAll.spawn(dotnetCode);

  project.packageTask.reset();
  project.packageTask.spawn(packageAll);
}

/**
 * Every README and `@example` snippet must compile (`--strict`) against
 * rosetta/default.ts-fixture; the translations land in .jsii.tabl.json, which
 * jsii-pacmak and jsii-docgen pick up.
 */
function configureRosetta(project: awscdk.AwsCdkConstructLibrary): void {
  const extract = project.addTask('rosetta:extract', {
    description: 'Compile every README/@example TypeScript snippet strictly and translate it to Python, Java, C# and Go',
    exec: 'jsii-rosetta extract --strict',
  });
  project.postCompileTask.prependSpawn(extract);
}

/**
 * API compatibility (jsii-diff) against the previous release, checked by every release
 * build. Skipped while no release tag exists (nothing to compare with); the tag names the
 * exact npm version to compare with. Accepted breaking changes go in .compatignore.
 */
function configureCompat(project: awscdk.AwsCdkConstructLibrary): void {
  const compat = project.tasks.tryFind('compat');
  const release = project.tasks.tryFind('release');
  if (!compat || !release) throw new Error('projen tasks compat and release not found');
  const previous = 'git describe --tags --abbrev=0 --match "v[0-9]*"';
  compat.reset(
    `jsii-diff "npm:${project.package.packageName}@$(${previous} | sed "s/^v//")" --keys --ignore-file .compatignore`,
    { condition: previous },
  );
  compat.shell = TaskShell.bash();
  compat.description = 'Check the API against the previous release on npm (jsii-diff); skipped before the first release';
  // Right after the release build, before the version is reset.
  const buildIndex = release.steps.findIndex((step) => step.spawn === 'build');
  if (buildIndex < 0) throw new Error('the release task does not spawn build');
  release.insertStep(buildIndex + 1, { spawn: compat.name });
}

/**
 * A build-workflow job that installs the built packages into the Python, Java and Go
 * consumer apps and compares their templates with the TypeScript one.
 */
function configureConsumersJob(project: awscdk.AwsCdkConstructLibrary): void {
  const wf = project.buildWorkflow;
  if (!wf) return;
  wf.addPostBuildJob('consumers', {
    runsOn: ['ubuntu-latest'],
    permissions: { contents: JobPermission.READ },
    tools: {
      node: { version: '20.x' },
      python: { version: '3.11' },
      java: { version: '17' },
      go: { version: '^1.25' },
    },
    steps: [
      WorkflowSteps.checkout({
        with: {
          path: '.repo',
          ref: '${{ github.event.pull_request.head.sha }}',
          repository: '${{ github.event.pull_request.head.repo.full_name }}',
        },
      }),
      { name: 'Install dependencies', run: 'cd .repo && npm ci' },
      { name: 'Use the build artifacts', run: 'mv dist .repo/dist' },
      { name: 'Consumer apps', run: 'cd .repo && npx projen test:consumers' },
    ],
  });
}
