// Prints the synthesized SSM document Content (JSON) of the example app: the exact script and
// parameters that nodes receive. Used by the node-side tests, which run what the document carries.
import * as os from 'os';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from './app';

const { stack } = buildApp(path.join(os.tmpdir(), 'cdk-image-prefetcher-print-document'));
const documents = Template.fromStack(stack).findResources('AWS::SSM::Document');
const [document] = Object.values(documents);
process.stdout.write(`${JSON.stringify(document.Properties.Content, undefined, 2)}\n`);
