"""The hub as an OpenID Connect provider for its apps: "Sign in with the hub" (`hf_oauth: true`).

Authlib's authorization server runs the protocol (the authorization code flow, client
authentication, ID tokens signed RS256 through joserfc); this module gives it the hub's apps,
accounts, tokens and storage. Each space with `hf_oauth: true` is a client: its id names the space,
its secret is derived from the installation's internal secret, and it may redirect only to its own
app. The access token it receives is a hub token limited to the scopes the user granted."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any, get_args
from urllib.parse import urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, grants
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.addresses import app_url
from spacehub.controller.accounts import find_account, is_member, issue_token
from spacehub.controller.context import ControllerContext
from spacehub.db.models import Account, OAuthConsent, Repo, RepoType, SigningKey, TokenRole, utcnow
from spacehub.signing import derive_key, same_secret
from spacehub.spec.config import OAuthScope

ALWAYS = ("openid", "profile")  # every app's sign-in asks for these, as on the Hub
SCOPES_SUPPORTED = [*ALWAYS, *get_args(OAuthScope)]
CLIENT_PREFIX = "space-"
CODE_SECONDS = 600  # RFC 6749 recommends at most 10 minutes
ID_TOKEN_SECONDS = 3600
DEFAULT_EXPIRATION_MINUTES = 480  # the Hub's default for `hf_oauth_expiration_minutes`
SECRET_PURPOSE = b"oauth-client-secret"


@dataclass(frozen=True)
class OAuthApp(ClientMixin):
    """A space that signs its visitors in with the hub: an OAuth client."""

    client_id: str
    client_secret: str
    space_name: str
    origin: str  # scheme://host of the app
    root_path: str  # the app's path on that origin ("/" for a subdomain)
    scopes: tuple[str, ...]
    expiration_minutes: int
    authorized_orgs: tuple[str, ...]

    def get_client_id(self) -> str:
        """The client's id."""
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        """Where Gradio's sign-in comes back to."""
        return f"{self.origin}{self.root_path.rstrip('/')}/login/callback"

    def get_allowed_scope(self, scope: str) -> str:
        """The requested scopes this app may ask for."""
        return " ".join(s for s in (scope or "").split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Only the app itself: its origin, under its path (any query)."""
        try:
            parts = urlsplit(redirect_uri)
        except ValueError:
            return False
        if f"{parts.scheme}://{parts.netloc}" != self.origin or parts.fragment:
            return False
        return parts.path.startswith(self.root_path)

    def check_client_secret(self, client_secret: str) -> bool:
        """Whether the secret is this app's, compared in constant time."""
        return same_secret(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Confidential clients: the secret in HTTP Basic or in the form."""
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        """The authorization code flow only."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """The authorization code flow only."""
        return grant_type == "authorization_code"


def client_id_for(repo: Repo) -> str:
    """The OAuth client id of a space."""
    return f"{CLIENT_PREFIX}{repo.id}"


def client_secret_for(ctx: ControllerContext, client_id: str) -> str:
    """The OAuth client secret of a space: derived, so nothing stores it (a new internal secret
    gives every app a new one at its next start)."""
    key = derive_key(ctx.settings.resolved_internal_token, SECRET_PURPOSE)
    return hmac.new(key, client_id.encode(), hashlib.sha256).hexdigest()


def app_scopes(extra: object) -> tuple[str, ...]:
    """The scopes a space's app signs in with: `openid profile` and its `hf_oauth_scopes`."""
    listed = extra if isinstance(extra, list) else []
    return ALWAYS + tuple(s for s in listed if isinstance(s, str) and s not in ALWAYS)


def find_app(ctx: ControllerContext, session: Session, client_id: str) -> OAuthApp | None:
    """The app a client id names, if that space exists and its README asks for `hf_oauth`."""
    number = client_id.removeprefix(CLIENT_PREFIX)
    if not client_id.startswith(CLIENT_PREFIX) or not number.isdigit() or len(number) > 12:
        return None
    repo = session.get(Repo, int(number))
    if (
        repo is None
        or repo.type != RepoType.SPACE
        or repo.space is None
        or repo.card.get("hf_oauth") is not True
    ):
        return None
    url = urlsplit(
        app_url(
            ctx.settings, repo.space.subdomain, repo.owner.name, repo.name, ctx.settings.resolved_public_url
        )
    )
    orgs = repo.card.get("hf_oauth_authorized_org") or []
    expiration = repo.card.get("hf_oauth_expiration_minutes")
    return OAuthApp(
        client_id=client_id,
        client_secret=client_secret_for(ctx, client_id),
        space_name=repo.full_name,
        origin=f"{url.scheme}://{url.netloc}",
        root_path=url.path.rstrip("/") + "/",
        scopes=app_scopes(repo.card.get("hf_oauth_scopes")),
        expiration_minutes=expiration if isinstance(expiration, int) else DEFAULT_EXPIRATION_MINUTES,
        authorized_orgs=(orgs,) if isinstance(orgs, str) else tuple(o for o in orgs if isinstance(o, str)),
    )


def may_sign_in(session: Session, app: OAuthApp, account: Account) -> bool:
    """Whether `account` may sign in to `app`: any user, or a member of one of its authorized orgs."""
    if not app.authorized_orgs:
        return True
    return any(
        (org := find_account(session, name)) is not None and is_member(session, org, account)
        for name in app.authorized_orgs
    )


def has_consent(session: Session, account: Account, app: OAuthApp, scope: str) -> bool:
    """Whether the user already let this app sign them in with exactly these scopes."""
    return session.get(OAuthConsent, (account.id, app.client_id, normal_scope(scope))) is not None


def record_consent(session: Session, account: Account, app: OAuthApp, scope: str) -> None:
    """Remember the user's consent, so that this app and scope set is not asked about again."""
    if not has_consent(session, account, app, scope):
        session.add(OAuthConsent(account_id=account.id, client_id=app.client_id, scopes=normal_scope(scope)))


def normal_scope(scope: str) -> str:
    """A scope string in one spelling: each scope once, sorted."""
    return " ".join(sorted(set(scope.split())))


# Signing keys ------------------------------------------------------------------------------------


def signing_keys(ctx: ControllerContext, session: Session) -> list[RSAKey]:
    """The hub's ID-token keys, newest first; the first call makes one."""
    rows = session.scalars(select(SigningKey).order_by(SigningKey.id.desc())).all()
    if not rows:
        key = RSAKey.generate_key(2048, private=True)
        key.ensure_kid()
        session.add(SigningKey(sealed_jwk=ctx.vault.seal(json.dumps(key.as_dict(private=True)))))
        session.flush()
        return [key]
    return [RSAKey.import_key(json.loads(ctx.vault.open(row.sealed_jwk))) for row in rows]


def public_jwks(ctx: ControllerContext, session: Session) -> dict[str, Any]:
    """The JSON Web Key Set clients check ID tokens with."""
    keys = [
        {**key.as_dict(private=False), "use": "sig", "alg": "RS256"} for key in signing_keys(ctx, session)
    ]
    return {"keys": keys}


# Authlib's server, on the hub ---------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthHttpRequest:
    """What the authorization server needs of an HTTP request: the hub's URL for it, its headers,
    and its parameters (query and form together)."""

    method: str
    uri: str
    headers: Mapping[str, str]  # case-insensitive (Starlette's Headers)
    params: dict[str, str]


class _Payload(OAuth2Payload):
    def __init__(self, params: dict[str, str]):
        self._data = params
        self._datalist: dict[str, list[str]] = defaultdict(list, {k: [v] for k, v in params.items()})

    @property
    def data(self) -> dict[str, str]:
        """The request's parameters, as Authlib reads them."""
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        """The request's parameters, each as a list, as Authlib reads them."""
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, request: OAuthHttpRequest):
        super().__init__(request.method, request.uri, headers=request.headers)
        self.payload = _Payload(request.params)
        self._params = request.params

    @property
    def args(self) -> dict[str, str]:
        """The request's parameters (query and form alike)."""
        return self._params

    @property
    def form(self) -> dict[str, str]:
        """The request's parameters (query and form alike)."""
        return self._params


@dataclass(frozen=True)
class StoredCode:
    """An authorization code's grant, as kept in Redis until it is exchanged."""

    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    account_id: int
    auth_time: int

    def get_redirect_uri(self) -> str:
        """The redirect URI the code was issued for."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """The scope the user granted."""
        return self.scope

    def get_nonce(self) -> str | None:
        """The client's nonce, for the ID token."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the user signed in, in epoch seconds."""
        return self.auth_time

    def get_acr(self) -> None:
        """No authentication context class is claimed."""
        return None

    def get_amr(self) -> None:
        """No authentication methods are claimed."""
        return None


class _CodeGrant(grants.AuthorizationCodeGrant):
    server: HubAuthorizationServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        """Keep the code's grant in Redis for CODE_SECONDS."""
        stored = StoredCode(
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=request.payload.data.get("nonce"),
            account_id=request.user.id,
            auth_time=int(time.time()),
        )
        ctx = self.server.ctx
        ctx.redis.set(ctx.keys.oauth_code(code), json.dumps(stored.__dict__), ex=CODE_SECONDS)

    def query_authorization_code(self, code: str, client: OAuthApp) -> StoredCode | None:
        """The code's grant, taken out of Redis (a code works once), if it is this client's."""
        ctx = self.server.ctx
        raw = ctx.redis.getdel(ctx.keys.oauth_code(code))  # used once, whatever comes next
        if raw is None:
            return None
        stored = StoredCode(**json.loads(raw))
        return stored if stored.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Nothing to do: the query took the code out already."""
        pass  # query_authorization_code took it out already

    def authenticate_user(self, authorization_code: StoredCode) -> Account | None:
        """The account the code was issued to, if it is still enabled."""
        account = self.server.session.get(Account, authorization_code.account_id)
        return None if account is None or account.disabled else account


class _IdTokens(OpenIDCode):
    def __init__(self, server: HubAuthorizationServer):
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        """Never: the client checks the nonce against its own session."""
        return False  # a nonce binds the ID token to the client's session; the client checks it

    def resolve_client_private_key(self, client: OAuthApp) -> RSAKey:
        """The hub's signing key, for every client."""
        return self.server.key

    def get_client_algorithm(self, client: OAuthApp) -> str:
        """ID tokens are signed with RS256."""
        return "RS256"

    def get_encode_header(self, client: OAuthApp) -> dict[str, str]:
        """The ID token's header: its algorithm and key id."""
        return {"alg": "RS256", "kid": self.server.key.kid or ""}

    def get_client_claims(self, client: OAuthApp) -> dict[str, Any]:
        """The ID token's issuer, audience and expiry."""
        return {
            "iss": self.server.issuer,
            "aud": [client.client_id],
            "exp": int(time.time()) + ID_TOKEN_SECONDS,
        }

    def generate_user_info(self, user: Account, scope: str) -> UserInfo:
        """The claims the granted scope lets the app see."""
        return user_info(self.server.ctx, user, scope)


class HubAuthorizationServer(AuthorizationServer):
    """Authlib's authorization server for one request: the hub's apps are its clients, its
    accounts the users, its tokens the access tokens."""

    def __init__(self, ctx: ControllerContext, session: Session, issuer: str):
        super().__init__(scopes_supported=None)
        self.ctx, self.session, self.issuer = ctx, session, issuer
        self.register_grant(_CodeGrant, [_IdTokens(self)])
        self.register_token_generator("default", self._issue_access_token)

    @cached_property
    def key(self) -> RSAKey:
        """The newest signing key: unsealed only for a request that issues an ID token."""
        return signing_keys(self.ctx, self.session)[0]

    def query_client(self, client_id: str) -> OAuthApp | None:
        """The app whose client id this is, if any."""
        return find_app(self.ctx, self.session, client_id or "")

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing to do: the token generator stored it."""
        pass  # _issue_access_token stored it (as a digest, like every hub token)

    def create_oauth2_request(self, request: OAuthHttpRequest | OAuth2Request) -> OAuth2Request:
        """Authlib's request for ours."""
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def create_json_request(self, request: OAuthHttpRequest) -> Any:
        """No endpoint of the hub takes JSON requests."""
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResponse:
        """Authlib's answer as the hub sends it."""
        return OAuthResponse(status, body, dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals are used."""
        pass

    def _issue_access_token(
        self,
        grant_type: str,
        client: OAuthApp,
        user: Account | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        assert user is not None
        scope = normal_scope(scope or "")
        seconds = client.expiration_minutes * 60
        _token, plaintext = issue_token(
            self.session,
            user,
            f"Sign-in to {client.space_name}"[:100],
            TokenRole.WRITE if "write-repos" in scope.split() else TokenRole.READ,
            scopes=scope,
            expires_at=utcnow() + timedelta(seconds=seconds),
        )
        return {"token_type": "Bearer", "access_token": plaintext, "expires_in": seconds, "scope": scope}


@dataclass(frozen=True)
class OAuthResponse:
    """What the authorization server answers: a status, a body (JSON data or nothing) and headers
    (a redirect's Location among them)."""

    status: int
    body: Any
    headers: dict[str, str]


def user_info(ctx: ControllerContext, account: Account, scope: str) -> UserInfo:
    """The claims about a user an app gets with `scope` (the Hub's names: Gradio's OAuthProfile
    reads name, preferred_username, profile and picture)."""
    base = ctx.settings.resolved_public_url
    info = UserInfo(
        sub=str(account.id),
        name=account.fullname or account.name,
        preferred_username=account.name,
        profile=f"{base}/{account.name}",
        picture=f"{base}/static/avatar.svg",
    )
    if "email" in scope.split() and account.email:
        info.update(email=account.email, email_verified=False)
    return info
