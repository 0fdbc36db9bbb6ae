"""Runtime settings, read from the environment (prefix ``CONSILIUM_``) and CLI flags.

One frozen object built at start-up and handed to the app factory, so tests can build an app with
any configuration without touching the process environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSILIUM_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    # When set, use this MongoDB instead of starting the embedded SecantusDB.
    mongodb_uri: str | None = None
    db_name: str = "consilium"
    # Embedded SecantusDB only: fsync its log on every commit. Off by default (like mongod's
    # j:false); without it a SIGKILL of the database process can lose the latest commits.
    embedded_sync_on_commit: bool = False
    # Embedded SecantusDB only: WiredTiger cache, e.g. "4G" or "512M". Unset = mongod's rule,
    # half of (RAM - 1 GiB), at least 1 GiB. SecantusDB's own default (1G) stalls bulk loads
    # once the working set outgrows it: at about 90k resources with our ~55 indexes per type.
    embedded_cache_size: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,5}[MG]$")
    # Security by default: only an explicit "off" disables authorization.
    auth: Literal["on", "off"] = "on"
    admin_token: str | None = None
    # Public base URL (scheme://host[:port]) used in Location, fullUrl and links; derived from
    # the request when unset, which is right behind a proxy that rewrites Host.
    base_url: str | None = None
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_bundle_entries: int = Field(default=10_000, ge=1)
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    # Referential integrity for local references on write (see the transactions issue).
    enforce_referential_integrity: bool = True
    allow_multiple_conditional_delete: bool = False
    access_token_lifetime_seconds: int = Field(default=300, ge=10)
    audit: Literal["on", "off"] = "on"
    log_level: str = "info"
    # Notifications (docs/notifications.md). Destination hosts a Subscription may name,
    # comma-separated (``ehr.example.org``, ``*.example.org``); empty = any host whose addresses
    # are all public. Listed hosts may resolve to private addresses (an on-premises EHR).
    notify_allow_hosts: str = ""
    # Development and tests only: allow loopback endpoints (127.0.0.0/8, ::1).
    notify_allow_loopback: bool = False
    # Run the delivery worker in this process (several processes may all run one).
    notify_worker: bool = True
    notify_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    notify_max_payload_bytes: int = Field(default=1_000_000, ge=1024)
    notify_max_failures: int = Field(default=10, ge=1)
    notify_backoff_base_seconds: float = Field(default=1.0, gt=0)
    notify_backoff_max_seconds: float = Field(default=300.0, gt=0)
    notify_poll_seconds: float = Field(default=1.0, gt=0)
    notify_lease_seconds: float = Field(default=30.0, gt=0)
    notify_concurrency: int = Field(default=8, ge=1, le=64)
    # Delivered outbox events older than this are pruned by the worker (event counters and
    # ``$status`` come from the per-subscription counter, not from the outbox).
    notify_retention_seconds: float = Field(default=7 * 86400.0, gt=0)
    # Events removed per pruning batch, and how often a worker prunes.
    notify_prune_batch: int = Field(default=500, ge=1, le=10_000)
    notify_prune_every_seconds: float = Field(default=60.0, gt=0)

    # Read cache of stored versions for GET [type]/[id] and vread (docs/workers.md): at most this
    # many entries (0 = off) and this many bytes (JSON size). Safe with several workers.
    read_cache: int = Field(default=0, ge=0)
    read_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # How long a silent read-cache watcher is waited for by writers of other processes (and
    # after which it stops serving cached current versions itself).
    read_cache_lease_seconds: float = Field(default=2.0, ge=0.5, le=60)
    # First search pages kept while nothing of their types is written (server/search/
    # page_cache.py): at most this many (0 = off), each at most this long. They ride the read
    # cache's invalidation, so they are on only when the read cache is.
    search_cache: int = Field(default=1000, ge=0)
    search_cache_seconds: float = Field(default=60.0, gt=0, le=600)

    @property
    def auth_enabled(self) -> bool:
        return self.auth != "off"

    @property
    def db_dir(self) -> Path:
        return self.data_dir / "db"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"
