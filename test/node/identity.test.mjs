// @azure/identity's ManagedIdentityCredential and DefaultAzureCredential on
// the sidecar's managed-identity endpoint (token --identity-endpoint), which
// test/e2e/run.sh starts beside the token file and names in
// GATEWAY_IDENTITY_ENDPOINT and GATEWAY_IDENTITY_HEADER. Each client runs in
// a process of its own with no authority host and no instance-discovery
// option: only the variables a pod would have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { env, tenant, clientId, scope, resourceAppId } from './env.mjs';

const endpoint = env('GATEWAY_IDENTITY_ENDPOINT');
const header = env('GATEWAY_IDENTITY_HEADER');
const base = new URL(endpoint).origin;

// client runs identity-client.mjs with the trusted CA and vars, nothing else
// of Azure's.
function client(vars, ...args) {
  const childEnv = { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS, ...vars };
  try {
    return JSON.parse(execFileSync(process.execPath, ['identity-client.mjs', ...args], { env: childEnv, encoding: 'utf8' }));
  } catch (err) {
    if (err.stdout) return JSON.parse(err.stdout);
    throw err;
  }
}

function assertToken(got, wantAudience = resourceAppId) {
  assert.ok(got.claims, got.error);
  assert.equal(got.claims.tid, tenant);
  assert.equal(got.claims.azp, clientId);
  if (wantAudience) assert.equal(got.claims.aud, wantAudience);
  assert.ok(got.expiresOnTimestamp > Date.now() + 30 * 60 * 1000, 'expires within 30 minutes');
}

const appService = { IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: header };

test('ManagedIdentityCredential, App Service variables (IDENTITY_ENDPOINT, IDENTITY_HEADER)', () => {
  assertToken(client(appService, 'managed', scope));
  assertToken(client(appService, 'managed', scope, clientId));
});

test('ManagedIdentityCredential, IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST)', () => {
  assertToken(client({ AZURE_POD_IDENTITY_AUTHORITY_HOST: base }, 'managed', scope, clientId));
});

test('DefaultAzureCredential on the endpoint, AZURE_CLIENT_ID naming the identity', () => {
  assertToken(client({ ...appService, AZURE_CLIENT_ID: clientId }, 'default', scope));
});

test('ManagedIdentityCredential, a wrong IDENTITY_HEADER is refused', () => {
  const got = client({ IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: `not-${header}` }, 'managed', scope);
  assert.match(got.error ?? '', /X-IDENTITY-HEADER/);
});

test('ManagedIdentityCredential, an unknown client id gets the token endpoint\'s AADSTS error', () => {
  const got = client(appService, 'managed', scope, '00000000-0000-0000-0000-0000000000aa'); // not the nil GUID (AADSTS700038)
  assert.match(got.error ?? '', /AADSTS700016/);
});
