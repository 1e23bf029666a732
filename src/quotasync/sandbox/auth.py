"""Connected apps, user credentials, OAuth grants and sessions.

Tokens are kept as SHA-256 hashes, in memory and in the state file, so a restart keeps sessions
alive the way a real org's restart would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class ConnectedApp:
    name: str
    client_id: str
    client_secret: str
    run_as: str | None = None  # username client_credentials runs as
    jwt_public_key: str | None = None
    callback_urls: tuple[str, ...] = ()
    # A certificate an admin uploaded ("Use digital signatures"); its key signs assertions too.
    jwt_certificate: str | None = None

    def to_settings(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "run_as": self.run_as,
            "jwt_public_key": self.jwt_public_key,
            "callback_urls": list(self.callback_urls),
            "jwt_certificate": self.jwt_certificate,
        }

    def verification_keys(self) -> list[Any]:
        """The keys that may sign this app's assertions: its own, and the uploaded certificate's."""
        keys: list[Any] = [self.jwt_public_key] if self.jwt_public_key else []
        if self.jwt_certificate:
            keys.append(x509.load_pem_x509_certificate(self.jwt_certificate.encode()).public_key())
        return keys

    @classmethod
    def from_settings(cls, data: dict[str, Any]) -> ConnectedApp:
        return cls(**{**data, "callback_urls": tuple(data.get("callback_urls", ()))})


def read_certificate(pem: str) -> x509.Certificate:
    """An uploaded certificate, checked as Salesforce's upload form would; ValueError says why."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ValueError(
            "pem must be an X.509 certificate in PEM form (-----BEGIN CERTIFICATE-----)"
        ) from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("the certificate's key must be RSA: JWT assertions are signed with RS256")
    return certificate


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


@dataclass(frozen=True)
class AuthorizationCode:
    """What consent gave: good for one exchange, within 15 minutes, with the same redirect URI."""

    user_id: str
    client_id: str
    redirect_uri: str
    issued_at: float
    challenge: str | None = None  # PKCE code_challenge
    method: str = "plain"  # PKCE code_challenge_method: S256 or plain

    def verifier_matches(self, verifier: str | None) -> bool:
        if self.challenge is None:
            return True
        if not verifier:
            return False
        if self.method == "S256":
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            verifier = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return hmac.compare_digest(verifier, self.challenge)


PKCE_METHODS = ("S256", "plain")


# How far a session's last use may move before it is written to the state file again: a restart
# may then find a session up to this much older than it was, never younger.
LAST_USED_GRAIN = 60.0


@dataclass
class Session:
    user_id: str
    app: str
    issued_at: float
    last_used: float
    saved_last_used: float = 0.0  # the last use the state file knows

    def to_settings(self) -> dict[str, Any]:
        self.saved_last_used = self.last_used
        return {
            "user_id": self.user_id,
            "app": self.app,
            "issued_at": self.issued_at,
            "last_used": self.last_used,
        }

    @classmethod
    def from_settings(cls, data: dict[str, Any]) -> Session:
        # Rows written before last use was kept know only when the session was issued.
        last_used = float(data.get("last_used", data["issued_at"]))
        return cls(data["user_id"], data["app"], data["issued_at"], last_used, last_used)


@dataclass
class AuthState:
    org_id: str
    apps: dict[str, ConnectedApp]  # by client id
    passwords: dict[str, str]  # username -> password
    session_timeout: float  # seconds of inactivity; 0 = never
    sessions: dict[str, Session] = field(default_factory=dict)  # hash -> session
    refresh_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # hash -> (user, app)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    changed: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- apps

    def app_by_client_id(self, client_id: str | None) -> ConnectedApp:
        app = self.apps.get(client_id or "")
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        return app

    def check_secret(self, app: ConnectedApp, secret: str | None) -> None:
        if not secret or not hmac.compare_digest(secret, app.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def check_password(self, username: str | None, password: str | None) -> str:
        stored = self.passwords.get(username or "")
        # A password may carry the user's security token appended; the sandbox has none to
        # check. Compared in constant time, and an unknown user against a password nobody has,
        # so the answer's timing tells neither the password nor whether the user exists.
        expected = (stored if stored is not None else secrets.token_urlsafe(12)).encode()
        given = (password or "").encode()[: len(expected)]
        if not hmac.compare_digest(given, expected) or stored is None:
            raise OAuthError("invalid_grant", "authentication failure")
        return username or ""

    # ---------------------------------------------------------------- tokens

    def issue(self, user_id: str, app: ConnectedApp, now: float) -> str:
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        session = Session(user_id, app.name, now, now)
        key = _hash(token)
        self.sessions[key] = session
        self.changed[f"session:{key}"] = session.to_settings()
        return token

    def issue_refresh(self, user_id: str, app: ConnectedApp) -> str:
        token = "5Aep861" + secrets.token_urlsafe(64)
        key = _hash(token)
        self.refresh_tokens[key] = (user_id, app.client_id)
        self.changed[f"refresh:{key}"] = [user_id, app.client_id]
        return token

    def redeem_refresh(self, token: str | None) -> tuple[str, ConnectedApp]:
        found = self.refresh_tokens.get(_hash(token or ""))
        if found is None:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        user_id, client_id = found
        return user_id, self.apps[client_id]

    def session_for(self, token: str, now: float) -> Session | None:
        key = _hash(token)
        session = self.sessions.get(key)
        if session is None:
            return None
        if self.expired(session, now):
            del self.sessions[key]
            self.changed[f"session:{key}"] = None
            return None
        session.last_used = max(session.last_used, now)
        if session.last_used - session.saved_last_used >= LAST_USED_GRAIN:
            self.changed[f"session:{key}"] = session.to_settings()
        return session

    def expired(self, session: Session, now: float) -> bool:
        return bool(self.session_timeout) and now - session.last_used > self.session_timeout

    def revoke(self, token: str) -> bool:
        key = _hash(token)
        if self.sessions.pop(key, None) is not None:
            self.changed[f"session:{key}"] = None
            return True
        if self.refresh_tokens.pop(key, None) is not None:
            self.changed[f"refresh:{key}"] = None
            return True
        return False

    def expire_all_sessions(self) -> int:
        count = len(self.sessions)
        for key in self.sessions:
            self.changed[f"session:{key}"] = None
        self.sessions.clear()
        return count

    def new_code(
        self,
        user_id: str,
        app: ConnectedApp,
        redirect_uri: str,
        now: float,
        challenge: str | None = None,
        method: str | None = None,
    ) -> str:
        code = "aPrx" + secrets.token_urlsafe(48)
        self.codes[code] = AuthorizationCode(
            user_id, app.client_id, redirect_uri, now, challenge, method or "plain"
        )
        return code

    def redeem_code(
        self,
        code: str | None,
        app: ConnectedApp,
        redirect_uri: str | None,
        verifier: str | None = None,
    ) -> str:
        found = self.codes.pop(code or "", None)
        # Codes are good for 15 minutes of wall time and one use (a failed attempt uses it too).
        if (
            found is None
            or time.time() - found.issued_at > 15 * 60
            or found.client_id != app.client_id
        ):
            raise OAuthError("invalid_grant", "invalid authorization code")
        if redirect_uri != found.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
        if not found.verifier_matches(verifier):
            raise OAuthError("invalid_grant", "invalid code verifier")
        return found.user_id

    def upload_certificate(self, app_name: str, pem: str) -> ConnectedApp:
        """Replace the app's uploaded certificate, as an admin's upload does; its own key stays."""
        found = next((a for a in self.apps.values() if a.name == app_name), None)
        if found is None:
            raise KeyError(app_name)
        read_certificate(pem)
        updated = replace(found, jwt_certificate=pem)
        self.apps[found.client_id] = updated
        return updated

    def verify_assertion(
        self, assertion: str | None, login_url: str, now_choices: tuple[float, ...]
    ) -> tuple[ConnectedApp, str]:
        """Check a jwt-bearer assertion: RS256, signed by the app's own key or by the key of the
        certificate an admin uploaded."""
        if not assertion:
            raise OAuthError("invalid_request", "assertion type not supported")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
            if not isinstance(claims.get("iss"), str) or not isinstance(claims.get("sub"), str):
                raise OAuthError("invalid_grant", "invalid assertion: iss and sub must be strings")
            app = self.app_by_client_id(claims["iss"])
            keys = app.verification_keys()
            if not keys:
                raise OAuthError("invalid_client", "invalid client credentials")
            _decode_signed(assertion, keys, [*AUDIENCES, login_url])
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", f"invalid assertion: {exc}") from None
        # Clients stamp `exp` from their own clock; accept it if it lies ahead of the org's virtual
        # time or of wall time, whichever the client used.
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise OAuthError("invalid_grant", "invalid assertion: exp must be a number")
        if all(exp < now - 60 for now in now_choices):
            raise OAuthError("invalid_grant", "expired authorization code")
        return app, str(claims["sub"])

    def drain_changes(self) -> dict[str, Any]:
        out, self.changed = self.changed, {}
        return out


def _decode_signed(assertion: str, keys: list[Any], audience: list[str]) -> None:
    """Verify with each key in turn; only the last key's signature failure is reported."""
    options: Any = {"verify_exp": False, "require": ["iss", "sub", "aud", "exp"]}
    for key in keys[:-1]:
        try:
            jwt.decode(assertion, key, algorithms=["RS256"], audience=audience, options=options)
            return
        except jwt.InvalidSignatureError:
            continue
    jwt.decode(assertion, keys[-1], algorithms=["RS256"], audience=audience, options=options)


def signature(app: ConnectedApp, identity_url: str, issued_at: str) -> str:
    digest = hmac.new(
        app.client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "oauth") or not token.strip():
        return None
    return token.strip()
