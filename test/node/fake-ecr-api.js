#!/usr/bin/env node
// The ECR API endpoint for the node tests and the token benchmark: answers GetAuthorizationToken as
// ECR does (JSON 1.1 protocol: POST / with X-Amz-Target AmazonEC2ContainerRegistry_V20150921.
// GetAuthorizationToken; ECR API reference, GetAuthorizationToken), so that the REAL clients, the
// kubelet's ecr-credential-provider (AWS SDK for Go v2) and the AWS CLI, get their token from it
// with the endpoint overridden (AWS_ENDPOINT_URL_ECR=http://ADDR).
//   node fake-ecr-api.js --listen 127.0.0.1:PORT --state DIR --region R
// The token is DIR/token (the registry's password); the answer is
//   {"authorizationData":[{"authorizationToken": base64("AWS:<token>"), "expiresAt": <now+12h, epoch s>,
//     "proxyEndpoint": "https://<registry>.dkr.ecr.<region>.amazonaws.com"}]}
// Requests are checked as far as ECR would: SigV4-signed for service ecr in --region (the scope
// names them), with the access key id of the environment the server started in. Failure modes are
// fake-aws.sh's, read from DIR/mode on each request (auth, throttle with DIR/throttle-count, down,
// wrong-token). Each request appends "ecr GetAuthorizationToken" to DIR/api.log, and the request's
// registryIds (none: "-") to DIR/ecr-api.log. No npm dependencies.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const opts = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (!/^--(listen|state|region)$/.test(argv[i]) || argv[i + 1] === undefined) {
    throw new Error(`fake-ecr-api.js: bad argument ${argv[i]}`);
  }
  opts[argv[i].slice(2)] = argv[i + 1];
}
const [host, port] = opts.listen.split(':');
const state = opts.state;
const keyId = process.env.AWS_ACCESS_KEY_ID || 'AKIAIOSFODNN7EXAMPLE';
const read = (f) => { try { return fs.readFileSync(path.join(state, f), 'utf8').trim(); } catch { return ''; } };
const append = (f, line) => fs.appendFileSync(path.join(state, f), `${line}\n`);

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/x-amz-json-1.1',
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': crypto.randomUUID(),
  });
  res.end(text);
}
const error = (res, status, type, message) => answer(res, status, { __type: type, message });

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const target = req.headers['x-amz-target'] || '';
    const auth = req.headers.authorization || '';
    if (req.method !== 'POST' || target !== 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken') {
      return error(res, 400, 'UnknownOperationException', `not GetAuthorizationToken: ${req.method} ${target}`);
    }
    const scope = new RegExp(`^AWS4-HMAC-SHA256 Credential=${keyId}/[0-9]{8}/([a-z0-9-]+)/ecr/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`);
    const signed = scope.exec(auth);
    if (!signed) return error(res, 403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (signed[1] !== opts.region) {
      return error(res, 403, 'InvalidSignatureException', `Credential should be scoped to a valid region: got ${signed[1]}, this endpoint is ${opts.region}`);
    }
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString() || '{}'); } catch { return error(res, 400, 'SerializationException', 'bad JSON'); }
    append('api.log', 'ecr GetAuthorizationToken');
    append('ecr-api.log', `registryIds=${(body.registryIds || ['-']).join(',')}`);
    const mode = read('mode');
    if (mode === 'down') { req.socket.destroy(); return undefined; }
    if (mode === 'auth') {
      return error(res, 400, 'AccessDeniedException', 'User is not authorized to perform: ecr:GetAuthorizationToken');
    }
    if (mode === 'throttle') {
      const n = Number(read('throttle-count') || 0);
      if (n > 0) {
        fs.writeFileSync(path.join(state, 'throttle-count'), `${n - 1}\n`);
        return error(res, 400, 'ThrottlingException', 'Rate exceeded');
      }
    }
    const token = mode === 'wrong-token' ? crypto.randomBytes(1500).toString('base64') : read('token');
    return answer(res, 200, {
      authorizationData: [{
        authorizationToken: Buffer.from(`AWS:${token}`).toString('base64'),
        expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
        proxyEndpoint: `https://${(body.registryIds || ['123456789012'])[0]}.dkr.ecr.${opts.region}.amazonaws.com`,
      }],
    });
  });
}).listen(Number(port), host);
