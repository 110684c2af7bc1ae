// What test/e2e/run.sh gives the suites: the development gateway's dev.env
// and GATEWAY_BIN, the gateway's binary.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

export const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this suite through test/e2e/run.sh`);
  return v;
};

export const host = env('AZURE_AUTHORITY_HOST');
export const tenant = env('AZURE_TENANT_ID');
export const clientId = env('AZURE_CLIENT_ID');
export const scope = env('GATEWAY_DEV_SCOPE');
export const secret = env('GATEWAY_DEV_CLIENT_SECRET');
export const resourceAppId = env('GATEWAY_DEV_RESOURCE_APP_ID');
const gatewayBin = env('GATEWAY_BIN');

// svid fetches a JWT-SVID from the development Workload API with the gateway's CLI.
export const svid = (...args) => execFileSync(gatewayBin, ['token', ...args], { encoding: 'utf8' }).trim();
