// Writes the integ tests' test image (integ/support.ts, testImage) as an OCI image layout, for
// node-chain.sh to push to the loopback registry and pull with the node script:
//   ts-node test/contract/integ-image.ts MARKER DIR      (prints the manifest digest)
import * as fs from 'fs';
import * as path from 'path';
import { testImage } from '../../integ/support';

const [marker, dir] = process.argv.slice(2);
const image = testImage(marker);
fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
const write = (digest: string, data: Buffer) => fs.writeFileSync(path.join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')), data);
for (const blob of image.blobs) write(blob.digest, Buffer.from(blob.data, 'base64'));
write(image.digest, Buffer.from(image.manifest));
fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({
  schemaVersion: 2,
  manifests: [{
    mediaType: image.mediaType,
    digest: image.digest,
    size: Buffer.byteLength(image.manifest),
    annotations: { 'org.opencontainers.image.ref.name': 'latest' },
  }],
}));
process.stdout.write(`${image.digest}\n`);
