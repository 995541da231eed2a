"""Who am I: the Hub's /api/whoami-v2, which huggingface_hub and the hf CLI use to check tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from spacehub.controller.accounts import memberships_of, token_of
from spacehub.controller.serializers import iso
from spacehub.errors import Unauthorized
from spacehub.http.deps import SessionDep, UserDep

router = APIRouter(tags=["users"])


@router.get("/api/whoami-v2", summary="The user a token belongs to")
def whoami(session: SessionDep, principal: UserDep) -> dict[str, Any]:
    """The user a token belongs to, their organizations and the token's name and role."""
    account = principal.account
    if account is None:
        raise Unauthorized("the internal token belongs to no user")
    memberships = memberships_of(session, account)
    token = token_of(session, principal)
    return {
        "type": "user",
        "id": str(account.id),
        "name": account.name,
        "fullname": account.fullname or account.name,
        "email": account.email,
        "emailVerified": False,
        "isPro": False,
        "canPay": False,
        "avatarUrl": "",
        "isAdmin": account.is_admin,
        "orgs": [
            {
                "type": "org",
                "id": str(org.id),
                "name": org.name,
                "fullname": org.fullname or org.name,
                "roleInOrg": membership.role,
            }
            for membership, org in memberships
        ],
        "auth": {
            "type": "access_token",
            "accessToken": {
                "displayName": token.name if token else "token",
                "role": principal.role.value,
                "createdAt": iso(token.created_at) if token else None,
            },
        },
    }
