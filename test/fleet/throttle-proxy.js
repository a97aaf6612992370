#!/usr/bin/env node
// The fleet test's registry front: an HTTPS server (the throwaway CA's certificate for the ECR host
// name) that forwards every request to docker-registry on plain HTTP, and throttles like ECR does:
// once LIMIT requests were let through in the last second it answers 429 Too Many Requests (ECR's
// throttling status) without forwarding. ECR's quotas are per API (BatchGetImage serves manifests,
// GetDownloadUrlForLayer layers), so a separate limit can apply to manifest requests only. It counts
// arrivals in a sliding one-second window and keeps the peak: the request rate the fleet offered,
// throttled requests (and clients' retries of them) included.
//
//   node throttle-proxy.js --listen 127.0.0.1:443 --upstream 127.0.0.1:5000 --cert F --key F --stats F
//
// Control, on the same server (never forwarded, never counted):
//   POST /_fleet/reset[?limit=N][&manifestLimit=M]   zero the counters; at most N requests, and at
//        most M manifest requests, let through per second (absent: no limit; 0: none)
//   GET  /_fleet/stats           the counters as JSON, also written to the --stats file
// No npm dependencies: Node's http/https only.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');

const WINDOW_MS = 1000;

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!/^--(listen|upstream|cert|key|stats)$/.test(argv[i]) || argv[i + 1] === undefined) {
      throw new Error(`usage: throttle-proxy.js --listen H:P --upstream H:P --cert F --key F --stats F (at ${argv[i]})`);
    }
    opts[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['listen', 'upstream', 'cert', 'key', 'stats']) if (!opts[k]) throw new Error(`--${k} is required`);
  return opts;
}

/** Timestamps of the last second, oldest first. */
class Window {
  constructor() { this.times = []; }
  count(now) {
    while (this.times.length > 0 && this.times[0] <= now - WINDOW_MS) this.times.shift();
    return this.times.length;
  }
  add(now) { this.times.push(now); }
}

class Throttle {
  constructor() { this.reset(undefined, undefined); }
  /** Limits per second; undefined for none. */
  reset(limit, manifestLimit) {
    this.limit = limit;
    this.manifestLimit = manifestLimit;
    this.arrivals = new Window();
    this.passed = new Window();
    this.passedManifests = new Window();
    this.stats = {
      limit: limit ?? null, manifestLimit: manifestLimit ?? null, requests: 0, forwarded: 0, throttled: 0,
      throttledManifests: 0, peakRequestsPerSecond: 0, peakForwardedPerSecond: 0, upstreamErrors: 0,
    };
  }
  /** Counts a request; true if it may go on, false if it gets a 429. */
  admit(now, isManifest) {
    this.arrivals.add(now);
    this.stats.requests += 1;
    this.stats.peakRequestsPerSecond = Math.max(this.stats.peakRequestsPerSecond, this.arrivals.count(now));
    const full = (limit, window) => limit !== undefined && window.count(now) >= limit;
    if (full(this.limit, this.passed) || (isManifest && full(this.manifestLimit, this.passedManifests))) {
      this.stats.throttled += 1;
      if (isManifest) this.stats.throttledManifests += 1;
      return false;
    }
    this.passed.add(now);
    if (isManifest) this.passedManifests.add(now);
    this.stats.forwarded += 1;
    this.stats.peakForwardedPerSecond = Math.max(this.stats.peakForwardedPerSecond, this.passed.count(now));
    return true;
  }
}

/** A limit from the query: absent is none, else a whole number. */
function limitParam(url, name) {
  const v = url.searchParams.get(name);
  if (v === null) return undefined;
  if (!/^[0-9]+$/.test(v)) throw new Error(`${name}: a whole number, got ${v}`);
  return Number(v);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [upHost, upPort] = opts.upstream.split(':');
  const [host, port] = opts.listen.split(':');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const throttle = new Throttle();
  const now = () => Number(process.hrtime.bigint() / 1000000n);
  const writeStats = () => {
    fs.writeFileSync(`${opts.stats}.tmp`, `${JSON.stringify(throttle.stats)}\n`);
    fs.renameSync(`${opts.stats}.tmp`, opts.stats);
  };

  const server = https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }, (req, res) => {
    const url = new URL(req.url, 'https://proxy');
    if (url.pathname.startsWith('/_fleet/')) {
      if (req.method === 'POST' && url.pathname === '/_fleet/reset') {
        try {
          throttle.reset(limitParam(url, 'limit'), limitParam(url, 'manifestLimit'));
        } catch (e) {
          res.writeHead(400).end(`${e.message}\n`);
          return;
        }
      }
      writeStats();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(throttle.stats)}\n`);
      return;
    }
    if (!throttle.admit(now(), /\/manifests\//.test(url.pathname))) {
      // What ECR answers when a registry API call is throttled. The body names no cause the node
      // script could mistake for auth or not-found.
      req.resume();
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' })
        .end('{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}\n');
      return;
    }
    const headers = { ...req.headers, 'x-forwarded-proto': 'https' };
    const up = http.request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.statusMessage, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (e) => {
      throttle.stats.upstreamErrors += 1;
      if (!res.headersSent) res.writeHead(502).end(`upstream: ${e.message}\n`);
      else res.destroy();
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 30000;
  server.listen(Number(port), host);
  const stop = () => {
    writeStats();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
