"""The pure parts of Salesforce's OAuth flows: URLs, JWT assertions, PKCE, keys, and what an
OAuth error means in an admin's terms. No I/O here; `connection.py` sends what these build.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from quotasync.errors import InvalidInput

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
# Salesforce refuses an assertion whose `exp` is more than three minutes ahead.
ASSERTION_LIFETIME = timedelta(minutes=3)
# The REST version quotasync is built and tested against; used whenever the org serves it.
API_VERSION = "62.0"


class KeyProblem(InvalidInput):
    """A private key quotasync cannot sign assertions with; the message says why."""


def login_base(login_url: str) -> str:
    """`https://host[:port]` from what an admin typed; ValueError if it is not an https URL."""
    parts = urlsplit(login_url.strip())
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"the login URL must be an https URL such as {PRODUCTION_AUDIENCE}, "
            f"{SANDBOX_AUDIENCE} or https://yourdomain.my.salesforce.com (got {login_url!r})"
        )
    if parts.path.strip("/"):
        raise ValueError(f"the login URL is a host without a path (got {login_url!r})")
    return f"https://{parts.netloc}"


def jwt_audience(login_url: str) -> str:
    """The `aud` an assertion for this login host must carry.

    Salesforce wants the generic login host, never a My Domain: https://login.salesforce.com for
    production orgs (login.salesforce.com, x.my.salesforce.com) and https://test.salesforce.com for
    sandboxes and scratch orgs (test.salesforce.com, x--name.sandbox.my.salesforce.com,
    x.scratch.my.salesforce.com, and pre-enhanced-domain x--name.my.salesforce.com). Any other host
    (a sandbox org on this machine) is its own audience.
    """
    host = (urlsplit(login_url).hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(
        (".sandbox.my.salesforce.com", ".scratch.my.salesforce.com")
    ):
        return SANDBOX_AUDIENCE
    if host.endswith(".my.salesforce.com") and "--" in host.split(".")[0]:
        return SANDBOX_AUDIENCE
    if host == "login.salesforce.com" or host.endswith(".salesforce.com"):
        return PRODUCTION_AUDIENCE
    return login_base(login_url)


def rsa_private_key(data: bytes) -> str:
    """The PEM (PKCS#8) of an unencrypted RSA private key; KeyProblem says what else it is."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyProblem(
            "the private key is encrypted with a passphrase; give an unencrypted copy "
            "(openssl pkey -in server.key -out server-plain.key)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyProblem(_what_it_is(data)) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = "an EC" if isinstance(key, ec.EllipticCurvePrivateKey) else "a non-RSA"
        raise KeyProblem(
            f"the file holds {kind} private key, not an RSA one: Salesforce verifies JWT "
            "assertions with RS256"
        )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _what_it_is(data: bytes) -> str:
    if b"BEGIN CERTIFICATE" in data:
        return (
            "the file holds a certificate, not a private key: give the private key whose "
            "certificate was uploaded to the connected app"
        )
    if b"PUBLIC KEY" in data:
        return "the file holds a public key, not a private key"
    return "the file is not a PEM private key (-----BEGIN PRIVATE KEY-----)"


def jwt_assertion(
    private_key: str, *, client_id: str, username: str, audience: str, now: datetime
) -> str:
    """An RS256 assertion for the jwt-bearer grant, good for three minutes from `now`."""
    claims = {
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": int((now + ASSERTION_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, private_key, algorithm="RS256")


def new_code_verifier() -> str:
    """A PKCE code_verifier: 86 URL-safe characters (RFC 7636 wants 43 to 128)."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """The S256 code_challenge of a verifier: unpadded base64url of its SHA-256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    login_url: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    scope: str = "api refresh_token",
    code_challenge: str | None = None,
) -> str:
    """Where the "Connect Salesforce" button sends the admin's browser (the web-server flow)."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
    }
    if code_challenge is not None:
        params.update(code_challenge=code_challenge, code_challenge_method="S256")
    return f"{login_base(login_url)}/services/oauth2/authorize?{urlencode(params)}"


def choose_api_version(listing: Iterable[Mapping[str, Any]]) -> str:
    """The REST version to use from `GET /services/data/`: quotasync's own if served, else the
    newest the org serves."""
    versions = [str(entry["version"]) for entry in listing if "version" in entry]
    if not versions:
        raise ValueError("the org lists no REST API versions")
    if API_VERSION in versions:
        return API_VERSION
    return max(versions, key=lambda v: tuple(int(n) for n in v.split(".")))


# What Salesforce's OAuth errors mean, by (error, error_description), for an admin to act on.
_MEANINGS = {
    ("invalid_grant", "user hasn't approved this consumer"): (
        "the connected app is not pre-authorized for this user: an org admin must set the app's "
        'Permitted Users to "Admin approved users are pre-authorized" and add the user\'s profile '
        "or a permission set (Setup > Connected Apps > Manage Connected Apps > the app)"
    ),
    ("invalid_app_access", "user is not admin approved to access this app"): (
        "the connected app is not pre-authorized for this user: an org admin must add the user's "
        "profile or a permission set to the app (Setup > Manage Connected Apps > the app)"
    ),
    ("invalid_grant", "audience is invalid"): (
        f"the assertion's audience is wrong: production orgs take {PRODUCTION_AUDIENCE}, "
        f"sandboxes {SANDBOX_AUDIENCE}"
    ),
    ("invalid_grant", "inactive user"): "the user is deactivated in the org",
    ("invalid_grant", "expired access/refresh token"): (
        "the refresh token was revoked or has expired; connect the workspace again"
    ),
    ("invalid_grant", "invalid authorization code"): (
        "the authorization code is wrong, was used already, or has expired; start again from the "
        "Connect Salesforce button"
    ),
    ("invalid_grant", "invalid code verifier"): (
        "the PKCE code_verifier does not match the code_challenge sent to the authorize page"
    ),
    ("invalid_client_id", "client identifier invalid"): (
        "the consumer key is not that of a connected app in this org (a new app takes up to ten "
        "minutes to reach every Salesforce server)"
    ),
    ("redirect_uri_mismatch", "redirect_uri must match configuration"): (
        "the redirect URI differs from the one the authorize page was given, or from the app's "
        "callback URL"
    ),
}

_JWT_MEANINGS = {
    ("invalid_grant", "authentication failure"): (
        "no such user in this org: check the username (a sandbox username ends in the "
        "sandbox's name, and logs in at test.salesforce.com)"
    ),
    ("invalid_grant", "expired authorization code"): (
        "Salesforce found the assertion expired: this machine's clock is off"
    ),
    ("invalid_client", "invalid client credentials"): (
        'the connected app has no certificate: enable "Use digital signatures" and upload the '
        "certificate of this private key"
    ),
}

_SECRET_MEANINGS = {
    ("invalid_grant", "authentication failure"): "the username or password is wrong",
    ("invalid_client", "invalid client credentials"): (
        "the consumer secret is wrong or missing (the app requires one for this flow)"
    ),
}


def explain(grant: str, error: str, description: str) -> str:
    """A refused token request in an admin's terms: Salesforce's words, then what they mean."""
    said = f"Salesforce refused the login ({error}: {description})"
    key = (error, description)
    meaning = (_JWT_MEANINGS if grant == JWT_BEARER else _SECRET_MEANINGS).get(key)
    meaning = meaning or _MEANINGS.get(key)
    if meaning is None and grant == JWT_BEARER and description.startswith("invalid assertion"):
        meaning = (
            "the assertion's signature does not verify: this private key does not belong to the "
            "certificate uploaded to the connected app, or the consumer key is another app's"
        )
    return f"{said}: {meaning}" if meaning else said
