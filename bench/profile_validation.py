"""Cost of the profile check on the write path: validations per second for each demo resource
that claims (or must meet) a Consilium profile. Prints figures; never run by pytest."""

from __future__ import annotations

import time

from profiles.validator import validate
from seed.loader import demo_resources
from server.profile_validation import profiles_to_check


def main() -> None:
    cases = [(r, url) for r in demo_resources() for url in profiles_to_check(r)]
    for r, url in cases[:1]:
        validate(r, url)  # warm the definition caches
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        for r, url in cases:
            validate(r, url)
    elapsed = time.perf_counter() - start
    n = rounds * len(cases)
    print(f"{len(cases)} profiled demo resources x {rounds} rounds")
    print(f"{n / elapsed:,.0f} validations/s, {elapsed / n * 1e6:,.1f} µs per validation")


if __name__ == "__main__":
    main()
