"""Fallback backend fixtures for the driver conformance suite.

tests/conftest.py (owned by the fs branch) normally provides `backend`,
`backend_memory` and `backend_local`. test_conformance.py imports the fixtures below
only when conftest does not define them, so the suite also runs on a branch that
has no conftest yet. Same contract: a backend has .name, .driver, .source,
.settings, .env, .persistent and .fresh().
"""
import pytest

BACKEND_NAMES = ["memory", "local"]


class Backend:
    def __init__(self, name, driver, source, settings=None, env=None, persistent=True,
                 fresh=None):
        self.name = name
        self.driver = driver
        self.source = source
        self.settings = dict(settings or {})
        self.env = dict(env or {})
        self.persistent = persistent
        self._fresh = fresh

    def fresh(self):
        return self._fresh()

    def __repr__(self):
        return "Backend(%s)" % self.name


@pytest.fixture(scope="session")
def backend_memory():
    def fresh():
        return Backend("memory", "memory", "mem://", persistent=False, fresh=fresh)
    return fresh()


@pytest.fixture(scope="session")
def backend_local(tmp_path_factory):
    def fresh():
        root = tmp_path_factory.mktemp("localroot")
        return Backend("local", "local", str(root), settings={"root_dir": str(root)},
                       fresh=fresh)
    return fresh()


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    return request.getfixturevalue("backend_" + request.param)
