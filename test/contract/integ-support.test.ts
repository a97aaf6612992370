// What the integ tests rely on that can be checked without an account, so that a deploy (slow,
// and it costs money) does not fail on a mistake of the test itself: the hand-made test image,
// the pusher Lambda's code against a stubbed ECR client, and the node's cloud-config.
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vm from 'vm';
import * as zlib from 'zlib';
// yaml comes with projen (a devDependency); cloud-init reads the user data as YAML.
import * as YAML from 'yaml';
import { PUSHER_CODE, testImage } from '../../integ/support';

const sha256 = (data: Buffer | string) => `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;

describe('the test image', () => {
  const image = testImage('marker-1');
  const manifest = JSON.parse(image.manifest);
  const blob = (digest: string) => Buffer.from(image.blobs.find(b => b.digest === digest)!.data, 'base64');

  test('is content-addressed: every digest is the sha256 of its bytes, every size their length', () => {
    expect(image.digest).toEqual(sha256(image.manifest));
    for (const b of image.blobs) expect(sha256(Buffer.from(b.data, 'base64'))).toEqual(b.digest);
    for (const d of [manifest.config, ...manifest.layers]) expect(blob(d.digest).length).toEqual(d.size);
    expect(manifest.mediaType).toEqual(image.mediaType);
  });

  test('its layer is a gzip of a tar holding /prefetch-marker, and the config names the tar', () => {
    const tar = zlib.gunzipSync(blob(manifest.layers[0].digest));
    const config = JSON.parse(blob(manifest.config.digest).toString());
    expect(config.rootfs.diff_ids).toEqual([sha256(tar)]);
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux' });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-image-'));
    try {
      fs.writeFileSync(path.join(dir, 'layer.tar'), tar);
      const list = spawnSync('tar', ['-tvf', 'layer.tar'], { cwd: dir, encoding: 'utf8' });
      expect(list.status).toBe(0);
      expect(list.stdout).toMatch(/^-rw-r--r-- 0\/0 +9 1970-01-01 00:00 prefetch-marker\n$/);
      const content = spawnSync('tar', ['-xOf', 'layer.tar', 'prefetch-marker'], { cwd: dir, encoding: 'utf8' });
      expect(content.stdout).toEqual('marker-1\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('is the same for the same marker and differs for another', () => {
    expect(testImage('marker-1')).toEqual(image);
    expect(testImage('marker-2').digest).not.toEqual(image.digest);
  });
});

describe('the pusher Lambda (inline code, stubbed ECR client)', () => {
  interface Call { readonly command: string; readonly input: any }

  function load(options: { available?: string[]; putError?: string } = {}) {
    const calls: Call[] = [];
    const responses: any[] = [];
    const commands: any = {};
    for (const name of ['BatchCheckLayerAvailability', 'InitiateLayerUpload', 'UploadLayerPart', 'CompleteLayerUpload', 'PutImage']) {
      commands[`${name}Command`] = class {
        public readonly command = name;
        constructor(public readonly input: any) {}
      };
    }
    class ECRClient {
      public async send(c: { command: string; input: any }) {
        calls.push({ command: c.command, input: c.input });
        switch (c.command) {
          case 'BatchCheckLayerAvailability':
            return { layers: [{ layerDigest: c.input.layerDigests[0], layerAvailability: options.available?.includes(c.input.layerDigests[0]) ? 'AVAILABLE' : 'UNAVAILABLE' }] };
          case 'InitiateLayerUpload': return { uploadId: `upload-${calls.length}` };
          case 'PutImage':
            if (options.putError) throw Object.assign(new Error(options.putError), { name: options.putError });
            return { image: { imageId: { imageDigest: sha256(c.input.imageManifest), imageTag: c.input.imageTag } } };
          default: return {};
        }
      }
    }
    const https = {
      request: (opts: any, callback: (res: any) => void) => ({
        on: () => undefined,
        end: (body: string) => {
          responses.push({ ...opts, body: JSON.parse(body) });
          callback({ resume: () => undefined, on: (_: string, done: () => void) => done() });
        },
      }),
    };
    const module = { exports: {} as any };
    const sandbox = {
      module,
      exports: module.exports,
      Buffer,
      URL,
      console: { log: () => undefined },
      process: { env: { REPOSITORY_NAME: 'integ-repo' } },
      require: (name: string) => ({ '@aws-sdk/client-ecr': { ECRClient, ...commands }, 'https': https } as any)[name],
    };
    vm.runInNewContext(PUSHER_CODE, sandbox);
    return { handler: module.exports.handler as (event: any) => Promise<any>, calls, responses };
  }

  const image = testImage('pusher');
  const request = (tag: string) => ({ tag, digest: image.digest, manifest: image.manifest, mediaType: image.mediaType, blobs: image.blobs });

  test('uploads each missing blob in one part, then puts the manifest under the tag', async () => {
    const { handler, calls } = load();
    await expect(handler(request('v1'))).resolves.toEqual({ digest: image.digest, tag: 'v1' });
    expect(calls.map(c => c.command)).toEqual([
      ...image.blobs.flatMap(() => ['BatchCheckLayerAvailability', 'InitiateLayerUpload', 'UploadLayerPart', 'CompleteLayerUpload']),
      'PutImage',
    ]);
    for (const [i, b] of image.blobs.entries()) {
      const part = calls[i * 4 + 2].input;
      expect(sha256(Buffer.from(part.layerPartBlob))).toEqual(b.digest);
      expect(part).toMatchObject({ repositoryName: 'integ-repo', partFirstByte: 0, partLastByte: part.layerPartBlob.length - 1 });
      expect(calls[i * 4 + 3].input).toEqual({ repositoryName: 'integ-repo', uploadId: part.uploadId, layerDigests: [b.digest] });
    }
    expect(calls[calls.length - 1].input).toEqual({
      repositoryName: 'integ-repo', imageManifest: image.manifest, imageManifestMediaType: image.mediaType, imageTag: 'v1',
    });
  });

  test('skips blobs ECR has; an empty tag puts an untagged manifest', async () => {
    const { handler, calls } = load({ available: image.blobs.map(b => b.digest) });
    await expect(handler(request(''))).resolves.toEqual({ digest: image.digest, tag: '' });
    expect(calls.map(c => c.command)).toEqual([...image.blobs.map(() => 'BatchCheckLayerAvailability'), 'PutImage']);
    expect(calls[calls.length - 1].input.imageTag).toBeUndefined();
  });

  test('a manifest already there under the tag is success', async () => {
    const { handler } = load({ putError: 'ImageAlreadyExistsException' });
    await expect(handler(request('v1'))).resolves.toEqual({ digest: image.digest, tag: 'v1' });
  });

  const cfnEvent = (requestType: string) => ({
    RequestType: requestType,
    ResponseURL: 'https://cloudformation-custom-resource-response.example/path?sig=1',
    StackId: 'stack',
    RequestId: 'request',
    LogicalResourceId: 'PushV1',
    ResourceProperties: { ServiceToken: 'arn', ...request('v1') },
  });

  test('as a custom resource: pushes on Create and answers CloudFormation SUCCESS with the digest', async () => {
    const { handler, calls, responses } = load();
    await handler(cfnEvent('Create'));
    expect(calls.some(c => c.command === 'PutImage')).toBe(true);
    expect(responses).toEqual([expect.objectContaining({
      hostname: 'cloudformation-custom-resource-response.example',
      path: '/path?sig=1',
      method: 'PUT',
      body: expect.objectContaining({
        Status: 'SUCCESS',
        PhysicalResourceId: 'integ-repo:v1',
        RequestId: 'request',
        Data: { digest: image.digest, tag: 'v1' },
      }),
    })]);
  });

  test('as a custom resource: Delete touches nothing; a failure answers FAILED with the reason', async () => {
    const deleted = load();
    await deleted.handler(cfnEvent('Delete'));
    expect(deleted.calls).toEqual([]);
    expect(deleted.responses[0].body.Status).toEqual('SUCCESS');

    const failed = load({ putError: 'LayersNotFoundException' });
    await failed.handler(cfnEvent('Create'));
    expect(failed.responses[0].body).toMatchObject({ Status: 'FAILED', Reason: expect.stringContaining('LayersNotFoundException') });
  });
});

describe('the node\'s user data', () => {
  const template = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'integ', 'integ.push.ts.snapshot', 'ImagePrefetcherIntegPush.template.json'), 'utf8'));
  const instance: any = Object.values(template.Resources).find((r: any) => r.Type === 'AWS::EC2::Instance');
  const text: string = instance.Properties.UserData['Fn::Base64'];

  test('is cloud-config that boots like an EKS AL2023 node: the SSM agent is not held back, containerd starts from cloud-final', () => {
    expect(text.split('\n')[0]).toEqual('#cloud-config');
    const config = YAML.parse(text);
    expect(config.bootcmd).toBeUndefined();
    expect(text).not.toContain('amazon-ssm-agent');
    expect(config.packages).toEqual(expect.arrayContaining(['containerd', 'jq']));
    expect(config.runcmd).toEqual([['systemctl', 'enable', '--now', 'containerd']]);
  });
});
