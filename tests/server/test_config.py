"""Settings bounds that protect operators from values that cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.config import Settings


def test_an_access_token_lifetime_under_ten_seconds_is_refused() -> None:
    # Shorter than a client's refresh margin plus a round trip: every call would refresh first.
    with pytest.raises(ValidationError, match="access_token_lifetime_seconds"):
        Settings(access_token_lifetime_seconds=9)


def test_a_ten_second_access_token_lifetime_is_accepted() -> None:
    assert Settings(access_token_lifetime_seconds=10).access_token_lifetime_seconds == 10
