"""Wiring: the Subscription write hook, the matcher, the wake-up, and the worker's lifecycle.

``install`` registers the hooks (one line in ``server/second_opinion.py`` calls it);
``start_worker`` is called from the app lifespan (server/app.py), so the worker runs only while
the app serves, and stops (releasing its leases) before the store closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.hooks import HookPoint
from server.notifications.delivery import Worker
from server.notifications.endpoint import EndpointPolicy
from server.notifications.outbox import Notifications
from server.notifications.store import NotifyStore

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.deps import AppState


class Runtime:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.notify = NotifyStore(state.store.db)
        s = state.settings
        endpoints = EndpointPolicy.from_settings(s.notify_allow_hosts, s.notify_allow_loopback)
        # The policy is installed by the SMART plugin after us: looked up when needed.
        self.notifications = Notifications(self.notify, endpoints, lambda: state.policy)
        self.worker: Worker | None = None

    def start(self) -> None:
        if self.worker is not None or not self.state.settings.notify_worker:
            return
        self.worker = Worker(self.state)
        self.notifications.wake = self.worker.wake
        self.worker.start()
        self.state.shutdown_hooks.insert(0, self.stop)

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        self.notifications.wake = lambda: None
        if worker is not None:
            worker.stop()


def install(app: FastAPI, state: AppState) -> None:
    runtime = Runtime(state)
    runtime.notify.prepare()
    n = runtime.notifications
    state.hooks.register(HookPoint.PRE_WRITE, n.on_write)
    state.hooks.register(HookPoint.PRE_COMMIT, n.on_commit)
    state.hooks.register(HookPoint.POST_COMMIT, n.after_commit)
    app.state.notifications = runtime


def start_worker(app: FastAPI) -> None:
    """From the lifespan: start this process's delivery worker (when the plugin is installed)."""
    runtime = getattr(app.state, "notifications", None)
    if isinstance(runtime, Runtime):
        runtime.start()
