#!/usr/bin/env node
// Receive callhook (VIS) call-event webhooks and verify their signatures. Node.js standard library.
//
//   node verify.js --port 3000 --key KEY   # listens on http://127.0.0.1:3000/webhook
//   node verify.js --selftest              # checks the published test vector
//
// Create the webhook with "signingAlgo": "HMAC_SHA256", the same "signingKey" and "metadataPolicy"
// "HEADER" (signature in X-VON-Signature) or "BODY" (in body.metadata.signature). The signature is
// hex HMAC-SHA256, keyed with the UTF-8 signing key, over body.event as compact JSON with sorted
// keys. Prints one line per delivery; answers 200 if it verifies, else 401 (callhook retries).
'use strict';
const crypto = require('crypto');
const http = require('http');

// Compact JSON with the keys of every object sorted: the exact text the signature covers.
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const members = Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`);
  return `{${members.join(',')}}`;
}

const sign = (key, event) =>
  crypto.createHmac('sha256', key).update(canonical(event)).digest('hex');

// [status, line] for one delivery: `header` is X-VON-Signature, if any.
function check(key, body, header) {
  const call = `${body.event.state} ${body.event.id}`;
  const given = header || (body.metadata || {}).signature;
  if (!given) return [401, `INVALID signature (missing) ${call}`];
  const expected = Buffer.from(sign(key, body.event));
  const actual = Buffer.from(String(given));
  if (actual.length !== expected.length || !crypto.timingSafeEqual(actual, expected)) {
    return [401, `INVALID signature (mismatch) ${call}`];
  }
  return [200, `verified ${call}`]; // your code here: act on body.event
}

function selftest() { // CONTRACT.md's test vector, keys deliberately out of order
  const event = { userId: '24785', type: 'CALL', state: 'ANSWERED',
    id: '5a85d86f253bcd10897f3189', externalId: 'callhalf-60227142553:0',
    startTime: '2018-02-15T18:58:56.194+0000', endTime: '2018-02-15T18:59:06.446+0000',
    answerTime: '2018-02-15T18:59:03.496+0000', duration: 2950,
    direction: 'OUTBOUND', accountId: '376' };
  const expected = '95aafd08cb72b1f9216ccd002b8917b04e41ecb19276ae759241fdc0cbb53fb5';
  const ok = sign('mysecretkey', event) === expected;
  console.log(ok ? 'selftest ok' : 'selftest FAILED');
  return ok ? 0 : 1;
}

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 1 ? process.argv[i + 1] : undefined;
};
if (process.argv.includes('--selftest')) process.exit(selftest());
const key = arg('key');
if (!key) {
  console.error('usage: node verify.js --port 3000 --key KEY | --selftest');
  process.exit(2);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let status, line;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      [status, line] = check(key, body, req.headers['x-von-signature']);
    } catch (e) {
      [status, line] = [400, 'INVALID body (not a call event)'];
    }
    console.log(line);
    res.writeHead(status).end();
  });
});
server.listen(Number(arg('port') ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/webhook`);
});
