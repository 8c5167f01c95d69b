"""Security Event Tokens from the registry, verified with stock libraries (joserfc and PyJWT)
against the JWKS the registry serves, as a relying party would (tests/integration/signals.rs runs this).

Environment: REGISTRY (the issuer URL), AUDIENCE (the stream's aud), SETS (a file holding a JSON
list of SETs), AGENT (the agent one of them must name as revoked). Exits non-zero on any failure.
"""

import json
import os
import sys

import requests

REGISTRY = os.environ["REGISTRY"]
AUDIENCE = os.environ["AUDIENCE"]
AGENT = os.environ["AGENT"]
with open(os.environ["SETS"]) as f:
    SETS = json.load(f)

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def check(ok, what):
    if not ok:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


meta = requests.get(f"{REGISTRY}/.well-known/ssf-configuration", timeout=30).json()
check(meta["issuer"] == REGISTRY, "the SSF configuration names the registry as issuer")
jwks_uri = meta["jwks_uri"]
jwks = requests.get(jwks_uri, timeout=30).json()

from joserfc import jwt as jose_jwt  # noqa: E402
from joserfc.errors import BadSignatureError  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402
import jwt as pyjwt  # noqa: E402

key_set = KeySet.import_key_set(jwks)
revoked = []
check(len(SETS) > 0, f"{len(SETS)} SETs to verify")
for s in SETS:
    decoded = jose_jwt.decode(s, key_set, algorithms=["EdDSA"])
    check(decoded.header.get("typ") == "secevent+jwt", "joserfc: header typ is secevent+jwt")
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": REGISTRY},
        aud={"essential": True, "value": AUDIENCE},
        iat={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    for absent in ("scope", "client_id", "exp", "sub"):
        check(absent not in decoded.claims, f"a SET carries no {absent}")

    header = pyjwt.get_unverified_header(s)
    check(header["typ"] == "secevent+jwt", "PyJWT: header typ is secevent+jwt")
    signing_key = pyjwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(s)
    claims = pyjwt.decode(
        s,
        signing_key,
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=REGISTRY,
        options={"require": ["iss", "aud", "iat", "jti"]},
    )
    check(claims == decoded.claims, "PyJWT and joserfc read the same claims")
    if SESSION_REVOKED in claims["events"]:
        sub = claims["sub_id"]
        app = sub.get("application", sub) if sub["format"] == "complex" else sub
        if app.get("format") == "iss_sub" and app.get("iss") == REGISTRY:
            revoked.append(app["sub"])

check(AGENT in revoked, f"a session-revoked SET names {AGENT}")

# A SET changed in transit does not verify, with either library.
head, body, sig = SETS[0].split(".")
forged_body = pyjwt.utils.base64url_encode(
    json.dumps({**json.loads(pyjwt.utils.base64url_decode(body)), "aud": "someone-else"}).encode()
).decode()
forged = ".".join([head, forged_body, sig])
try:
    jose_jwt.decode(forged, key_set, algorithms=["EdDSA"])
    check(False, "joserfc refuses a changed SET")
except BadSignatureError:
    check(True, "joserfc refuses a changed SET")
try:
    pyjwt.decode(forged, signing_key, algorithms=["EdDSA"], audience="someone-else", issuer=REGISTRY)
    check(False, "PyJWT refuses a changed SET")
except pyjwt.InvalidSignatureError:
    check(True, "PyJWT refuses a changed SET")
print("all SETs verified")
