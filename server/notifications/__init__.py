"""Notifications: R4 ``Subscription`` (rest-hook), matched in the writing transaction, written to
an outbox, delivered at least once by a worker inside the server (contract:
docs/notifications.md).

- ``endpoint``: which destinations are safe (pure, with an injectable resolver);
- ``spec``: a Subscription resource → the typed ``Spec`` the matcher and the worker use;
- ``outbox``: the PRE_WRITE hook for Subscription writes and the PRE_COMMIT matcher;
- ``delivery``: the worker (lease per subscription, retries, backoff, HMAC);
- ``plugin``: wiring into the app.
"""
