"""Debian's azure-identity 1.13 and MSAL 1.21 with their defaults (no
authority, instance discovery on) against a development gateway answering as
Entra's own host names, inside test/hostnames/run.sh's namespaces."""

import base64
import json
import os
import sys

import msal
from azure.identity import ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential

tenant, client, scope = os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], os.environ["GATEWAY_DEV_SCOPE"]
secret, token_file = os.environ["GATEWAY_DEV_CLIENT_SECRET"], os.environ["AZURE_FEDERATED_TOKEN_FILE"]


def svid():
    with open(token_file) as f:
        return f.read().strip()


def claims(token):
    p = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def check(name, get):
    try:
        c = claims(get())
        assert c["tid"] == tenant and c["azp"] == client, c
        print(f"ok - python {name}: a token from {c['iss']}")
    except Exception as e:  # report and stop at the first failure
        print(f"FAIL - python {name}: {e!r}")
        sys.exit(1)


check("ClientSecretCredential", lambda: ClientSecretCredential(tenant, client, secret).get_token(scope).token)
check("ClientAssertionCredential", lambda: ClientAssertionCredential(tenant, client, svid).get_token(scope).token)
os.environ.pop("AZURE_FEDERATED_TOKEN_FILE")  # else 1.13's managed identity exchanges the file itself
check("ManagedIdentityCredential (IMDS)", lambda: ManagedIdentityCredential(client_id=client).get_token(scope).token)
app = msal.ConfidentialClientApplication(client, client_credential=secret,
                                         authority="https://login.microsoftonline.com/" + tenant)
check("msal ConfidentialClientApplication", lambda: app.acquire_token_for_client([scope])["access_token"])
