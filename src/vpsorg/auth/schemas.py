"""Request and response bodies of the tokens API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from vpsorg.auth.models import ApiToken, TokenScope
from vpsorg.schemas import Page, RequestBody, UtcDatetime

MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600


class TokenCreate(RequestBody):
    name: Annotated[str, StringConstraints(max_length=100)] = ""
    scope: Literal["read", "write"] = Field(
        default="read", description="'read': GET only; 'write': every change the account may make"
    )
    expires_in: Annotated[int, Field(ge=60, le=MAX_LIFETIME_SECONDS)] | None = Field(
        default=None,
        description="Seconds until it expires; at most the calling token's own remaining life",
    )


class TokenOut(BaseModel):
    id: int
    name: str
    scope: TokenScope
    prefix: str = Field(description="The token's first characters, to recognise it")
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    last_used_at: UtcDatetime | None = Field(description="To the minute")

    @classmethod
    def from_token(cls, token: ApiToken) -> TokenOut:
        return cls.model_validate(token, from_attributes=True)


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, never again")


class TokenList(Page):
    results: list[TokenOut]
