"""The app listing's shortcuts keep the per-app answer: a project token reads only its own project's apps (and
an empty list when it asks for another project), a user sees exactly the apps ``enforce`` allows one by one."""

from __future__ import annotations

from pathlib import Path

from tests.api.appkit import AppKit, app_kit
from tests.api.test_api_applications import _names, _setup


def _listed(kit: AppKit, headers: dict[str, str], project: str) -> list[str]:
    response = kit.client.get("/api/v1/applications", headers=headers, params={"project": project})
    assert response.status_code == 200, response.text
    return sorted(item["metadata"]["name"] for item in response.json()["items"])


def test_project_tokens_list_their_own_project_only(tmp_path: Path) -> None:
    with app_kit(tmp_path) as kit:
        who = _setup(kit)
        assert _names(kit, who["reader"]) == {"guestbook", "wide"}
        assert _listed(kit, who["reader"], "web") == ["guestbook", "wide"]
        assert _listed(kit, who["reader"], "other") == []
        assert _listed(kit, who["viewer"], "other") == ["tool"]
        assert _listed(kit, who["viewer"], "web") == []
        assert _listed(kit, who["admin"], "web") == ["guestbook", "wide"]


def test_the_listing_is_the_per_app_answer(tmp_path: Path) -> None:
    with app_kit(tmp_path) as kit:
        who = _setup(kit)
        for caller in ("admin", "reader", "viewer"):
            shown = _names(kit, who[caller])
            one_by_one = {name for name in ("guestbook", "wide", "tool")
                          if kit.client.get(f"/api/v1/applications/{name}", headers=who[caller]).status_code == 200}
            assert shown == one_by_one, caller
