// Microsoft's Graph client library for JavaScript, unmodified, sets up
// federation through the gateway's Graph API: an application, a federated
// identity credential, and a JWT-SVID exchange for that application.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ClientSecretCredential, ClientAssertionCredential } from '@azure/identity';
import { Client } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';

import { host, tenant, clientId, scope, secret, svid } from './env.mjs';

const credentialOptions = { authorityHost: host, disableInstanceDiscovery: true, retryOptions: { maxRetries: 0 } };

function graphClient() {
  const credential = new ClientSecretCredential(tenant, clientId, secret, credentialOptions);
  const authProvider = new TokenCredentialAuthenticationProvider(credential, { scopes: ['https://graph.microsoft.com/.default'] });
  // The library sends tokens only to Graph's own hosts and those listed here.
  return Client.initWithMiddleware({ authProvider, baseUrl: host, defaultVersion: 'v1.0', customHosts: new Set([new URL(host).hostname]) });
}

// The issuer and subject of the development workload's JWT-SVIDs.
const svidClaims = () => JSON.parse(Buffer.from(svid().split('.')[1], 'base64url').toString());

test('the Graph client library creates an app and a federated credential the workload then uses', async () => {
  const graph = graphClient();
  const app = await graph.api('/applications').post({ displayName: `graph-client-${randomUUID().slice(0, 8)}` });
  assert.match(app.appId, /^[0-9a-f-]{36}$/);
  await graph.api('/servicePrincipals').post({ appId: app.appId });

  const { iss, sub } = svidClaims();
  const fic = await graph.api(`/applications/${app.id}/federatedIdentityCredentials`).post({
    name: 'workload', issuer: iss, subject: sub, audiences: ['api://AzureADTokenExchange'], description: 'from the Graph client',
  });
  assert.equal(fic.subject, sub);
  assert.ok(fic['@odata.context'].endsWith(`applications('${app.id}')/federatedIdentityCredentials/$entity`));

  const list = await graph.api(`/applications/${app.id}/federatedIdentityCredentials`).get();
  assert.deepEqual(list.value.map((c) => c.name), ['workload']);
  const byFilter = await graph.api('/applications').filter(`appId eq '${app.appId}'`).get();
  assert.equal(byFilter.value.length, 1);

  // The workload's JWT-SVID now stands in for the new app's secret.
  const assertion = new ClientAssertionCredential(tenant, app.appId,
    async () => svid(), credentialOptions);
  const token = await assertion.getToken(scope);
  assert.ok(token.token.split('.').length === 3);

  await graph.api(`/applications/${app.id}/federatedIdentityCredentials/workload`).delete();
  await graph.api(`/applications/${app.id}`).delete();
});

test('the Graph client library sees Graph errors with their code', async () => {
  const graph = graphClient();
  const app = await graph.api('/applications').post({ displayName: 'graph-client-errors' });
  await assert.rejects(
    graph.api(`/applications/${app.id}/federatedIdentityCredentials`).post({
      name: 'two-audiences', issuer: 'https://issuer.example', subject: 's', audiences: ['a', 'b'],
    }),
    (err) => {
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'InvalidFederatedIdentityCredentialValue');
      assert.match(err.message, /exactly 1 audience/);
      return true;
    });
  await assert.rejects(graph.api('/applications/00000000-0000-0000-0000-000000000000').get(),
    (err) => err.statusCode === 404 && err.code === 'Request_ResourceNotFound');
  await graph.api(`/applications/${app.id}`).delete();
});
