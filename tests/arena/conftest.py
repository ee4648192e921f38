"""Fixtures shared by the Space's API tests: the fault server answering in each policy's style, and the Space
launched on it (module-scoped: one app per test module)."""

from __future__ import annotations

import pytest

from fault_server import serve_faults
from space_helpers import launched, responder, space_config


@pytest.fixture(scope="module")
def backend():
    with serve_faults(responder=responder, token_delay=0.02) as srv:
        yield srv


@pytest.fixture(scope="module")
def app(backend, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("space")
    with launched(space_config(backend.url, tmp)) as (space, url):
        yield space, url, tmp
