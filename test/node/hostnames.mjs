// @azure/identity with its defaults (no authority host, instance discovery
// on) against a development gateway answering as Entra's own host names,
// inside test/hostnames/run.sh's namespaces. Prints one line per client;
// exits 1 on the first failure.
import { readFileSync } from 'node:fs';
import {
  ClientSecretCredential, ClientAssertionCredential, WorkloadIdentityCredential, ManagedIdentityCredential,
} from '@azure/identity';

const { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: client, GATEWAY_DEV_SCOPE: scope,
  GATEWAY_DEV_CLIENT_SECRET: secret, AZURE_FEDERATED_TOKEN_FILE: tokenFile } = process.env;
const claims = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url'));
const clients = {
  ClientSecretCredential: () => new ClientSecretCredential(tenant, client, secret),
  ClientAssertionCredential: () => new ClientAssertionCredential(tenant, client, () => readFileSync(tokenFile, 'utf8').trim()),
  WorkloadIdentityCredential: () => new WorkloadIdentityCredential(),
  'ManagedIdentityCredential (IMDS)': () => {
    delete process.env.AZURE_FEDERATED_TOKEN_FILE; // else it exchanges the file itself
    return new ManagedIdentityCredential(client);
  },
};
for (const [name, make] of Object.entries(clients)) {
  try {
    const c = claims((await make().getToken(scope)).token);
    if (c.tid !== tenant || c.azp !== client) throw new Error(`claims ${JSON.stringify(c)}`);
    console.log(`ok - node ${name}: a token from ${c.iss}`);
  } catch (err) {
    console.log(`FAIL - node ${name}: ${err.name}: ${err.message}`);
    process.exit(1);
  }
}
