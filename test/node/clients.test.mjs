// The real Node Azure SDKs against a development gateway. test/e2e/run.sh
// starts the gateway and runs this file with its dev.env loaded and
// GATEWAY_BIN set to the gateway binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify, randomUUID } from 'node:crypto';
import {
  ClientSecretCredential,
  ClientAssertionCredential,
  WorkloadIdentityCredential,
} from '@azure/identity';
import { ConfidentialClientApplication } from '@azure/msal-node';

import { env, host, tenant, clientId, scope, secret, resourceAppId, svid } from './env.mjs';

const resource = scope.replace(/\/\.default$/, '');

// counter is an @azure/identity pipeline policy counting token requests.
function counter() {
  const c = { tokens: 0 };
  c.options = {
    authorityHost: host,
    disableInstanceDiscovery: true,
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [{
      position: 'perCall',
      policy: {
        name: 'count-token-requests',
        sendRequest: (req, next) => {
          if (new URL(req.url).pathname.endsWith('/oauth2/v2.0/token')) c.tokens++;
          return next(req);
        },
      },
    }],
  };
  return c;
}

const b64url = (s) => Buffer.from(s, 'base64url');

// verifyToken checks an access token as a resource API would: the signature
// against the keys the tenant's discovery document points to, then the claims.
async function verifyToken(token) {
  const discovery = await (await fetch(`${host}/${tenant}/v2.0/.well-known/openid-configuration`)).json();
  const jwks = await (await fetch(discovery.jwks_uri)).json();
  const [h, p, s] = token.split('.');
  const header = JSON.parse(b64url(h));
  assert.equal(header.alg, 'RS256');
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is not in ${discovery.jwks_uri}`);
  const key = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
  assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), key, b64url(s)), 'signature does not verify');
  const claims = JSON.parse(b64url(p));
  assert.equal(claims.iss, discovery.issuer);
  assert.equal(claims.tid, tenant);
  assert.equal(claims.aud, resourceAppId);
  assert.ok(claims.exp * 1000 > Date.now(), 'expired');
  return claims;
}

// assertAADSTS checks that an SDK error carries the AADSTS code the gateway sent.
async function assertAADSTS(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.match(String(err.message), new RegExp(`AADSTS${code}\\b`), `want AADSTS${code}, got: ${err.message}`);
    return true;
  });
}

test('@azure/identity ClientSecretCredential', async () => {
  const c = counter();
  const cred = new ClientSecretCredential(tenant, clientId, secret, c.options);
  const first = await cred.getToken(scope);
  const claims = await verifyToken(first.token);
  assert.equal(claims.azp, clientId);
  assert.equal(claims.azpacr, '1');
  const second = await cred.getToken(scope);
  assert.equal(second.token, first.token);
  assert.equal(c.tokens, 1, 'the second getToken should come from the SDK cache');

  const wrong = new ClientSecretCredential(tenant, clientId, 'not-the-secret', counter().options);
  await assertAADSTS(wrong.getToken(scope), 7000215);
});

test('@azure/identity ClientAssertionCredential with a JWT-SVID', async () => {
  const c = counter();
  let calls = 0;
  const cred = new ClientAssertionCredential(tenant, clientId, async () => { calls++; return svid(); }, c.options);
  const first = await cred.getToken(scope);
  const claims = await verifyToken(first.token);
  assert.equal(claims.azp, clientId);
  assert.equal(claims.azpacr, '2');
  assert.deepEqual(claims.roles, ['Data.Read']);
  await cred.getToken(scope);
  assert.equal(c.tokens, 1, 'the second getToken should come from the SDK cache');
  // MSAL may call the callback again before it consults its cache; only
  // token requests reach the gateway.
  assert.ok(calls >= 1);

  const otherAudience = new ClientAssertionCredential(tenant, clientId, async () => svid('--audience', 'api://other'), counter().options);
  await assertAADSTS(otherAudience.getToken(scope), 700212);
});

test('@azure/identity WorkloadIdentityCredential with the sidecar token file', async () => {
  env('AZURE_FEDERATED_TOKEN_FILE');
  const c = counter();
  const cred = new WorkloadIdentityCredential(c.options); // tenant, client and file from the environment
  const first = await cred.getToken(scope);
  const claims = await verifyToken(first.token);
  assert.equal(claims.azp, clientId);
  assert.equal(claims.azpacr, '2');
  await cred.getToken(scope);
  assert.equal(c.tokens, 1, 'the second getToken should come from the SDK cache');

  const unknown = randomUUID();
  const stranger = new WorkloadIdentityCredential({ ...counter().options, clientId: unknown });
  await assertAADSTS(stranger.getToken(scope), 700016);
});

test('@azure/msal-node ConfidentialClientApplication with knownAuthorities', async () => {
  const authority = `${host}/${tenant}`;
  const knownAuthorities = [new URL(host).host];
  const app = new ConfidentialClientApplication({ auth: { clientId, authority, knownAuthorities, clientSecret: secret } });
  const first = await app.acquireTokenByClientCredential({ scopes: [scope] });
  assert.equal(first.fromCache, false);
  const claims = await verifyToken(first.accessToken);
  assert.equal(claims.azp, clientId);
  const second = await app.acquireTokenByClientCredential({ scopes: [scope] });
  assert.equal(second.fromCache, true);
  assert.equal(second.accessToken, first.accessToken);

  const withAssertion = new ConfidentialClientApplication({ auth: { clientId, authority, knownAuthorities, clientAssertion: () => Promise.resolve(svid()) } });
  const federated = await withAssertion.acquireTokenByClientCredential({ scopes: [scope] });
  assert.equal((await verifyToken(federated.accessToken)).azpacr, '2');

  await assertAADSTS(app.acquireTokenByClientCredential({ scopes: [`${resource}/Data.Read`] }), 1002012);
});
