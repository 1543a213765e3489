"""Property-based test of the API from its own OpenAPI document (schemathesis + Hypothesis): valid and invalid
requests for every operation; no answer may be a 500, every answer must match the documented status codes, content
type and response schema, and every 4xx must carry a JSON message. Bounded: 30 + 30 examples per endpoint,
derandomized so CI sees the same requests each run."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed: pip install 'rnnkit[serve]'")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from rnnkit.serve.app import Limits, create_app, load_models  # noqa: E402

EXAMPLES = 30


@pytest.fixture(scope="module")
def api(tiny_run):
    """The app in-process (one model per endpoint, so requests that name no model reach one), small limits."""
    kinds = {"lm": "lm", "spam": "text-classify", "airline": "forecast", "spa": "translate", "chat": "chat"}
    models = load_models([f"{name}={tiny_run(kind)}" for name, kind in kinds.items()])
    app = create_app(models, Limits(max_input_length=300, max_new_tokens=20, max_batch=4, max_horizon=24))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.worker.stop()


def property_test(op: Any, mode: GenerationMode, statuses: list[int]) -> Any:
    """A Hypothesis test of one operation: requests of ``mode`` (valid or not), their statuses into ``statuses``."""

    def unnamed(case: Any) -> Any:
        # valid requests leave "model" out (a random name only ever finds the 404)
        if mode == GenerationMode.POSITIVE and isinstance(case.body, dict):
            case.body.pop("model", None)
        return case

    @given(case=op.as_strategy(mode).map(unnamed))
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(
            checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
        )
        statuses.append(response.status_code)
        if response.status_code >= 400:
            detail = response.json().get("detail")
            assert isinstance(detail, str) and detail, response.text

    return check


def test_no_request_gets_a_server_error(api):
    statuses: dict[str, list[int]] = {}
    operations = [r.ok() for r in api.get_all_operations()]
    assert {op.label for op in operations} >= {
        f"POST /v1/{e}" for e in ("generate", "translate", "chat", "classify", "forecast")
    }
    for op in operations:
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if op.method.upper() == "POST" else [])
        for mode in modes:
            property_test(op, mode, statuses.setdefault(f"{op.label} {mode.value}", []))()
    # the valid requests did reach the models, not only the validators
    for ep in ("generate", "translate", "chat", "classify", "forecast"):
        assert 200 in statuses[f"POST /v1/{ep} positive"], (ep, statuses)
