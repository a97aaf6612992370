#!/usr/bin/env node
// The node tests' ECR front with S3 layer downloads: an HTTPS server (the throwaway CA's certificate,
// valid for the ECR host name and the S3 bucket's) in front of docker-registry on plain HTTP.
// ECR serves a layer (GET /v2/<repo>/blobs/<digest>) by answering, once the token is accepted, with a
// redirect to a presigned S3 URL (amazon-ecr GetDownloadUrlForLayer; `docker pull` and containerd
// follow it). This proxy does the same: registry requests are forwarded; a blob GET the registry
// accepts becomes a 307 to https://<s3 host>/<repo>/blobs/<digest>?X-Amz-...; a request to the S3
// host answers S3's 403 "Request has expired" while the --fail-file holds a number above 0
// (decremented on each), else serves the blob from the registry.
//
//   node s3-proxy.js --listen 127.0.0.1:443 --upstream 127.0.0.1:5000 --cert F --key F \
//     --ecr-host H --s3-host H --token-file F --fail-file F
// No npm dependencies: Node's http/https only.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');

const opts = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (!/^--(listen|upstream|cert|key|ecr-host|s3-host|token-file|fail-file)$/.test(argv[i]) || argv[i + 1] === undefined) {
    throw new Error(`s3-proxy.js: bad argument ${argv[i]}`);
  }
  opts[argv[i].slice(2)] = argv[i + 1];
}
const [upHost, upPort] = opts.upstream.split(':');
const [host, port] = opts.listen.split(':');
const BLOB = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/;
const S3_PATH = /^\/(.+)\/blobs\/(sha256:[a-f0-9]{64})(\?.*)?$/;

function forward(req, res, path, headers) {
  const up = http.request({ host: upHost, port: upPort, method: req.method, path, headers }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(up);
}

function failuresLeft() {
  let n = 0;
  try { n = Number(fs.readFileSync(opts['fail-file'], 'utf8').trim()) || 0; } catch { n = 0; }
  if (n > 0) fs.writeFileSync(opts['fail-file'], String(n - 1));
  return n > 0;
}

https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }, (req, res) => {
  const name = (req.headers.host || '').split(':')[0];
  if (name === opts['s3-host']) {
    const m = S3_PATH.exec(req.url);
    if (!m) { res.writeHead(404); res.end(); return; }
    if (failuresLeft()) {
      // S3's answer to a presigned URL past its X-Amz-Expires (or signed by a skewed clock).
      res.writeHead(403, { 'Content-Type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      return;
    }
    const token = fs.readFileSync(opts['token-file'], 'utf8').trim();
    const headers = { authorization: `Basic ${Buffer.from(`AWS:${token}`).toString('base64')}` };
    if (req.headers.range) headers.range = req.headers.range;
    forward(req, res, `/v2/${m[1]}/blobs/${m[2]}`, headers);
    return;
  }
  const blob = req.method === 'GET' ? BLOB.exec(req.url) : null;
  if (!blob) { forward(req, res, req.url, req.headers); return; }
  // Ask the registry first (it checks the token), then redirect instead of serving.
  const up = http.request({ host: upHost, port: upPort, method: 'HEAD', path: req.url, headers: req.headers }, (r) => {
    r.resume();
    if (r.statusCode !== 200) { res.writeHead(r.statusCode, r.headers); res.end(); return; }
    const query = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261130T000000Z&X-Amz-Expires=3600&X-Amz-Signature=e2e';
    res.writeHead(307, { location: `https://${opts['s3-host']}/${blob[1]}/blobs/${blob[2]}?${query}` });
    res.end();
  });
  up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  up.end();
}).listen(Number(port), host);
