"""Reading a JWT's expiry without trusting it, and the sign-in cache's bookkeeping."""

from __future__ import annotations

import base64
import json

import pendulum
import pytest

from airflow_provider_jobmojito.auth import SignedInToken, SignInCache, jwt_expiry


def jwt(claims: object) -> str:
    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.signature"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (jwt({"exp": 1_800_000_000}), pendulum.from_timestamp(1_800_000_000, tz="UTC")),
        (jwt({"sub": "no exp"}), None),
        (jwt({"exp": "soon"}), None),
        (jwt({"exp": True}), None),
        (jwt({"exp": 10**20}), None),  # beyond any calendar: not a crash
        (jwt(["not", "an", "object"]), None),
        ("opaque-token", None),
        ("a.b!.c", None),
    ],
)
def test_jwt_expiry_reads_exp_or_says_none(token: str, expected: pendulum.DateTime | None) -> None:
    assert jwt_expiry(token) == expected


def test_discard_forgets_only_the_token_it_was_told_about() -> None:
    cache = SignInCache()
    key = cache.key("https://x", "a@b.c", "pw")
    fresh = SignedInToken("fresh-token", pendulum.now("UTC").add(hours=1))
    cache.put(key, fresh)
    cache.discard(key, "older-token")  # another thread already replaced the refused one
    assert cache.get(key) == fresh
    cache.discard(key, "fresh-token")
    cache.discard(key, "fresh-token")  # twice, as two threads refused at once would: no KeyError
    assert cache.get(key) is None


def test_a_changed_password_is_another_cache_entry_and_the_key_hides_it() -> None:
    first, second = SignInCache.key("https://x", "a@b.c", "pw1"), SignInCache.key("https://x", "a@b.c", "pw2")
    assert first != second
    assert "pw1" not in repr(first)
