"""The Python Azure clients Debian ships (azure-identity 1.13.0b2 in
python3-azure, MSAL 1.21) against a development gateway and the sidecar's
managed-identity endpoint. test/e2e/run.sh runs this with the gateway's
dev.env loaded, AZURE_FEDERATED_TOKEN_FILE naming the sidecar's token file and
GATEWAY_IDENTITY_ENDPOINT / GATEWAY_IDENTITY_HEADER naming its endpoint:

    /usr/bin/python3 -m unittest -v clients_test

Options differ by version: azure-identity 1.13 takes instance_discovery=False
(disable_instance_discovery=True, the current name, is silently ignored there)
and its ClientAssertionCredential takes no keyword arguments at all (they reach
object.__init__), so it reads AZURE_AUTHORITY_HOST and skips discovery.
"""

import base64
import datetime
import json
import os
import tempfile
import time
import unittest
import uuid
from unittest import mock

import msal
import requests
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def env(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest(f"{name} is not set: run this suite through test/e2e/run.sh")
    return value


HOST = env("AZURE_AUTHORITY_HOST")
TENANT = env("AZURE_TENANT_ID")
CLIENT = env("AZURE_CLIENT_ID")
SCOPE = env("GATEWAY_DEV_SCOPE")
RESOURCE_APP = env("GATEWAY_DEV_RESOURCE_APP_ID")
SECRET = env("GATEWAY_DEV_CLIENT_SECRET")
TOKEN_FILE = env("AZURE_FEDERATED_TOKEN_FILE")
IDENTITY_ENDPOINT = env("GATEWAY_IDENTITY_ENDPOINT")
IDENTITY_HEADER = env("GATEWAY_IDENTITY_HEADER")
UNKNOWN_CLIENT = "00000000-0000-0000-0000-0000000000aa"  # not the nil GUID, which is AADSTS700038


def svid():
    with open(TOKEN_FILE) as f:
        return f.read().strip()


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# Only the variables of one way of configuring a client, as a workload has.
AZURE_VARS = [
    "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_SECRET",
    "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
]


def only(**vars):
    clean = {k: v for k, v in os.environ.items() if k not in AZURE_VARS}
    clean.update(vars)
    return mock.patch.dict(os.environ, clean, clear=True)


class Clients(unittest.TestCase):
    def assertToken(self, token, client=CLIENT, audience=RESOURCE_APP):
        c = claims(token.token if hasattr(token, "token") else token)
        self.assertEqual(c["tid"], TENANT)
        self.assertEqual(c["azp"], client)
        if audience:
            self.assertEqual(c["aud"], audience)
        if hasattr(token, "expires_on"):
            self.assertGreater(token.expires_on, time.time() + 30 * 60)
        return c

    def test_client_secret_credential(self):
        cred = ClientSecretCredential(TENANT, CLIENT, SECRET, authority=HOST, instance_discovery=False)
        c = self.assertToken(cred.get_token(SCOPE))
        self.assertEqual(c["azpacr"], "1")
        wrong = ClientSecretCredential(TENANT, CLIENT, "not-the-secret", authority=HOST, instance_discovery=False)
        with self.assertRaisesRegex(Exception, "AADSTS7000215"):
            wrong.get_token(SCOPE)

    def test_client_assertion_credential(self):
        with only(AZURE_AUTHORITY_HOST=HOST):
            cred = ClientAssertionCredential(TENANT, CLIENT, svid)
            c = self.assertToken(cred.get_token(SCOPE))
        self.assertEqual(c["azpacr"], "2")
        with only(AZURE_AUTHORITY_HOST=HOST):
            unknown = ClientAssertionCredential(TENANT, UNKNOWN_CLIENT, svid)
            with self.assertRaisesRegex(Exception, "AADSTS700016"):
                unknown.get_token(SCOPE)

    def test_certificate_credential(self):
        # A new app, its service principal and a certificate, through Graph.
        graph_token = ClientSecretCredential(TENANT, CLIENT, SECRET, authority=HOST, instance_discovery=False) \
            .get_token("https://graph.microsoft.com/.default").token
        graph = requests.Session()
        graph.headers["Authorization"] = "Bearer " + graph_token
        app = graph.post(HOST + "/v1.0/applications", json={"displayName": "python-certificate-" + uuid.uuid4().hex[:8]})
        app.raise_for_status()
        app = app.json()
        self.addCleanup(graph.delete, HOST + "/v1.0/applications/" + app["id"])
        graph.post(HOST + "/v1.0/servicePrincipals", json={"appId": app["appId"]}).raise_for_status()

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python-certificate")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()) \
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5)) \
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
        der = cert.public_bytes(serialization.Encoding.DER)
        graph.patch(HOST + "/v1.0/applications/" + app["id"], json={"keyCredentials": [{
            "type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(der).decode()}]}).raise_for_status()
        with tempfile.NamedTemporaryFile("wb", suffix=".pem") as pem:
            pem.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
            pem.write(cert.public_bytes(serialization.Encoding.PEM))
            pem.flush()
            cred = CertificateCredential(TENANT, app["appId"], pem.name, authority=HOST, instance_discovery=False)
            c = self.assertToken(cred.get_token(SCOPE), client=app["appId"])
        self.assertEqual(c["azpacr"], "2")

    def test_managed_identity_credential_app_service(self):
        with only(IDENTITY_ENDPOINT=IDENTITY_ENDPOINT, IDENTITY_HEADER=IDENTITY_HEADER):
            self.assertToken(ManagedIdentityCredential().get_token(SCOPE))
            self.assertToken(ManagedIdentityCredential(client_id=CLIENT).get_token(SCOPE))
            with self.assertRaisesRegex(Exception, "AADSTS700016"):
                ManagedIdentityCredential(client_id=UNKNOWN_CLIENT).get_token(SCOPE)
        with only(IDENTITY_ENDPOINT=IDENTITY_ENDPOINT, IDENTITY_HEADER="not-" + IDENTITY_HEADER):
            with self.assertRaisesRegex(Exception, "X-IDENTITY-HEADER"):
                ManagedIdentityCredential().get_token(SCOPE)

    def test_managed_identity_credential_imds(self):
        base = IDENTITY_ENDPOINT.split("/msi/")[0]
        with only(AZURE_POD_IDENTITY_AUTHORITY_HOST=base):
            self.assertToken(ManagedIdentityCredential(client_id=CLIENT).get_token(SCOPE))

    def test_managed_identity_credential_cloud_shell(self):
        with only(MSI_ENDPOINT=IDENTITY_ENDPOINT):
            self.assertToken(ManagedIdentityCredential().get_token(SCOPE))

    def test_default_azure_credential(self):
        with only(IDENTITY_ENDPOINT=IDENTITY_ENDPOINT, IDENTITY_HEADER=IDENTITY_HEADER, AZURE_CLIENT_ID=CLIENT):
            cred = DefaultAzureCredential(exclude_cli_credential=True, exclude_powershell_credential=True,
                                          exclude_shared_token_cache_credential=True)
            self.assertToken(cred.get_token(SCOPE))

    def msal_app(self, credential):
        return msal.ConfidentialClientApplication(CLIENT, client_credential=credential, authority=HOST + "/" + TENANT,
                                                  instance_discovery=False)

    def test_msal_client_secret(self):
        result = self.msal_app(SECRET).acquire_token_for_client([SCOPE])
        self.assertIn("access_token", result, result)
        self.assertToken(result["access_token"])
        result = self.msal_app("not-the-secret").acquire_token_for_client([SCOPE])
        self.assertEqual(result.get("error"), "invalid_client", result)
        self.assertIn(7000215, result.get("error_codes", []))

    def test_msal_client_assertion(self):
        result = self.msal_app({"client_assertion": svid()}).acquire_token_for_client([SCOPE])
        self.assertIn("access_token", result, result)
        self.assertEqual(self.assertToken(result["access_token"])["azpacr"], "2")


if __name__ == "__main__":
    unittest.main()
