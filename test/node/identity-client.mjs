// One managed-identity client in a process of its own, configured by its
// environment alone, as a workload is (MSAL keeps the managed-identity
// source it detected, and its tokens, for the life of a process):
//   node identity-client.mjs managed|default SCOPE [CLIENT_ID]
// prints the token's claims and expiry as JSON, or the error and exits 1.
import { ManagedIdentityCredential, DefaultAzureCredential } from '@azure/identity';

const [kind, scope, clientId] = process.argv.slice(2);
const cred = kind === 'default' ? new DefaultAzureCredential() : new ManagedIdentityCredential(clientId ? { clientId } : undefined);
try {
  const t = await cred.getToken(scope);
  const claims = JSON.parse(Buffer.from(t.token.split('.')[1], 'base64url'));
  console.log(JSON.stringify({ claims, expiresOnTimestamp: t.expiresOnTimestamp }));
} catch (err) {
  console.log(JSON.stringify({ error: `${err.name}: ${err.message}` }));
  process.exitCode = 1;
}
