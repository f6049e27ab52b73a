"""Property-based requests from our OpenAPI document against the application routes of a real system (sandbox,
Git, SQLite): no input an admin can send makes them answer 5xx (the generic run skips these routes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.appkit import app_kit, application, project


@pytest.mark.slow
def test_no_server_errors_for_generated_application_requests(tmp_path: Path) -> None:
    with app_kit(tmp_path) as kit:
        admin = kit.login()
        kit.client.post("/api/v1/projects", headers=admin, json={"project": project("web")})
        kit.client.post("/api/v1/applications", headers=admin, json={"application": application(kit.repo, "guestbook")})
        schema = schemathesis.openapi.from_asgi("/openapi.json", kit.client.app)
        failures: list[str] = []
        seen: list[int] = []
        for operation in schema.get_all_operations():
            op = operation.ok()  # type: ignore[union-attr]
            if not op.path.startswith("/api/v1/applications"):
                continue

            @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=op.as_strategy())
            def check(case: schemathesis.Case[Any]) -> None:
                if "name" in (case.path_parameters or {}) and case.path_parameters is not None:
                    case.path_parameters["name"] = "guestbook"
                response = case.call(headers=admin)
                seen.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} "
                                    f"{response.text[:300]}")

            check()
        assert failures == []
        assert len(seen) > 50 and any(code < 300 for code in seen)
