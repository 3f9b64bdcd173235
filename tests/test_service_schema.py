"""Schemathesis over the service's own OpenAPI document: no 500, and every answer as the document says.

Generated requests (valid and invalid bodies, paths and queries) go through the real app with an
admin key, so authorisation never hides an endpoint; the number of examples per operation is
bounded to keep the run short.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.server

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from sopilot.core.settings import Settings  # noqa: E402

EXAMPLES = 25


@pytest.fixture(scope="module")
def app_and_key(indexed_settings, tmp_path_factory):
    from sopilot.identity import KeyStore
    from sopilot.service import create_app

    tmp = tmp_path_factory.mktemp("schema")
    service_settings = Settings.from_env({}, data_dir=indexed_settings.data_dir,
                                         database_url=f"sqlite:///{tmp / 'audit.db'}", webhook_secret="s")
    key = KeyStore(service_settings.audit_url).create(name="schema admin", role="admin").key
    return create_app(service_settings), key


@pytest.fixture(scope="module")
def api_schema(app_and_key):
    import time

    from fastapi.testclient import TestClient

    app, _ = app_and_key
    with TestClient(app) as client:  # runs the lifespan: the models load once for the module
        deadline = time.monotonic() + 120
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/healthz").json()
            time.sleep(0.2)
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_openapi_document(api_schema, app_and_key):
    from hypothesis import given
    from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

    _, key = app_and_key
    operations = _operations(api_schema)
    assert len(operations) >= 11
    failures = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"},
                                   excluded_checks=[positive_data_acceptance, unsupported_method])

        try:
            check()
        except Exception as exc:  # noqa: BLE001 (collect every operation's failure, then report them all)
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_document_lists_every_endpoint(app_and_key):
    app, _ = app_and_key
    paths = set(app.openapi()["paths"])
    assert {"/healthz", "/v1/suggest", "/v1/suggest/stream", "/v1/guard", "/v1/retrieve",
            "/v1/suggestions/{suggestion_id}/feedback", "/v1/policies", "/v1/stops", "/v1/stops/{policy}",
            "/v1/audit", "/v1/hooks/{source}"} <= paths
