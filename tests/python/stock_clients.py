"""Stock Python OAuth/JOSE clients against a running Steward registry, unmodified.

Run by tests/integration/standards.rs (`stock_python_clients_work_unmodified`), which starts the registry,
registers an agent and its key, and passes everything through the environment:

  STEWARD_URL        the registry (http://127.0.0.1:PORT)
  AGENT_ID           the agent's id
  AGENT_KEY_PEM      the agent's Ed25519 private key (PKCS#8 PEM)
  SUBJECT_TOKEN      a person access token the agent may act with
  ADMIN_TOKEN        an admin's API token (introspection)
  SCOPE, AUDIENCE    what to ask for

Authlib insists on https URLs unless AUTHLIB_INSECURE_TRANSPORT is set (its documented switch
for local development); the test registry is on plain loopback HTTP, so the runner sets it.
Every call below is the library's documented API with no patching: the calls recorded in
docs/tokens.md. Exits non-zero with a message on the first failure.
"""

import os
import sys
import time
import uuid

import requests

URL = os.environ["STEWARD_URL"]
AGENT = os.environ["AGENT_ID"]
KEY_PEM = os.environ["AGENT_KEY_PEM"]
SUBJECT = os.environ["SUBJECT_TOKEN"]
ADMIN = os.environ["ADMIN_TOKEN"]
SCOPE = os.environ["SCOPE"]
AUDIENCE = os.environ["AUDIENCE"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def exchange_form(actor_assertion):
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": SUBJECT,
        "subject_token_type": ACCESS_TOKEN,
        "actor_token": actor_assertion,
        "actor_token_type": JWT_TYPE,
        "scope": SCOPE,
        "audience": AUDIENCE,
    }


def assertion_claims(token_endpoint):
    now = int(time.time())
    return {
        "iss": AGENT,
        "sub": AGENT,
        "aud": token_endpoint,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }


# --- Discovery: Authlib's stock RFC 8414 validator -------------------------------------------
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

metadata_json = requests.get(f"{URL}/.well-known/oauth-authorization-server", timeout=30).json()
metadata = AuthorizationServerMetadata(metadata_json)
metadata.validate()
check(True, "Authlib AuthorizationServerMetadata(...).validate() accepts the metadata")
token_endpoint = metadata["token_endpoint"]
issuer = metadata["issuer"]
jwks_uri = metadata["jwks_uri"]
jwks = requests.get(jwks_uri, timeout=30).json()


def verify_issued(access_token, who):
    """The issued token verified with joserfc and PyJWT against the served JWKS."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    key_set = KeySet.import_key_set(jwks)
    decoded = jose_jwt.decode(access_token, key_set, algorithms=["EdDSA"])
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        nbf={"essential": True},
    ).validate(decoded.claims)
    check(decoded.claims["act"]["sub"] == AGENT, f"{who}: joserfc jwt.decode + JWTClaimsRegistry verify it")

    import jwt as pyjwt

    signing_key = pyjwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(access_token)
    claims = pyjwt.decode(
        access_token,
        signing_key,
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=issuer,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )
    check(claims["scope"] == SCOPE, f"{who}: PyJWT PyJWKClient + jwt.decode verify it")


# --- Authlib: private_key_jwt with its defaults (exp one hour after iat) ----------------------
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import OKPKey

for alg in ["EdDSA", "Ed25519"]:
    # Authlib reads a bare PEM as RSA; an Ed25519 key is passed as a joserfc OKPKey.
    session = OAuth2Session(
        client_id=AGENT,
        client_secret=OKPKey.import_key(KEY_PEM),
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, alg=alg),
    )
    token = session.fetch_token(
        token_endpoint,
        grant_type=TOKEN_EXCHANGE,
        subject_token=SUBJECT,
        subject_token_type=ACCESS_TOKEN,
        scope=SCOPE,
        audience=AUDIENCE,
    )
    check(token.get("issued_token_type") == ACCESS_TOKEN, f"Authlib OAuth2Session.fetch_token with PrivateKeyJWT(alg={alg!r})")
    verify_issued(token["access_token"], f"Authlib ({alg})")

# --- joserfc: sign the actor assertion --------------------------------------------------------
from joserfc import jwt as jose_jwt
from joserfc.jwk import OKPKey

okp = OKPKey.import_key(KEY_PEM)
for alg in ["Ed25519", "EdDSA"]:
    assertion = jose_jwt.encode({"alg": alg}, assertion_claims(token_endpoint), okp, algorithms=[alg])
    reply = requests.post(token_endpoint, data=exchange_form(assertion), timeout=30)
    check(reply.status_code == 200, f"joserfc jwt.encode({{'alg': {alg!r}}}, ...) assertion exchanges: {reply.status_code} {reply.text}")
    verify_issued(reply.json()["access_token"], f"joserfc ({alg})")

# --- PyJWT: sign the actor assertion ----------------------------------------------------------
import jwt as pyjwt

assertion = pyjwt.encode(assertion_claims(token_endpoint), KEY_PEM, algorithm="EdDSA")
reply = requests.post(token_endpoint, data=exchange_form(assertion), timeout=30)
check(reply.status_code == 200, f"PyJWT jwt.encode(..., algorithm='EdDSA') assertion exchanges: {reply.status_code} {reply.text}")
access = reply.json()["access_token"]
verify_issued(access, "PyJWT")

# ... and as RFC 7523 client authentication instead of actor_token.
form = {k: v for k, v in exchange_form("").items() if not k.startswith("actor_token")}
form["client_assertion_type"] = ASSERTION_TYPE
form["client_assertion"] = pyjwt.encode(assertion_claims(token_endpoint), KEY_PEM, algorithm="EdDSA")
reply = requests.post(token_endpoint, data=form, timeout=30)
check(reply.status_code == 200, f"PyJWT assertion as client_assertion exchanges: {reply.status_code} {reply.text}")

# --- Introspection and revocation with plain requests -----------------------------------------
bearer = {"Authorization": f"Bearer {ADMIN}"}
state = requests.post(metadata["introspection_endpoint"], data={"token": access}, headers=bearer, timeout=30).json()
check(state.get("active") is True, "introspection says active")
reply = requests.post(metadata["revocation_endpoint"], data={"token": access}, headers=bearer, timeout=30)
check(reply.status_code == 200, "revocation answers 200")
state = requests.post(metadata["introspection_endpoint"], data={"token": access}, headers=bearer, timeout=30).json()
check(state == {"active": False}, "introspection after revocation says inactive")
print("all stock-client checks passed")
