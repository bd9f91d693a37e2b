"""Notification automations from ``deployments/automations.yaml``, created or updated by name.

    python -m deployments.notifications [--file deployments/automations.yaml]

``make deploy`` runs this (through ``deployments.deploy``) against ``PREFECT_API_URL``. The webhook URL
comes from ``DRIFTLINE_NOTIFY_URL`` and is kept as a secret of the block; it is never printed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

URL_ENV = "DRIFTLINE_NOTIFY_URL"
BLOCK_ENV = "DRIFTLINE_NOTIFY_BLOCK"
DEFAULT_FILE = Path(__file__).with_name("automations.yaml")
_AUTOMATION_KEYS = {"name", "description", "trigger", "subject", "body", "enabled"}


class NotificationSetupError(ValueError):
    """The automations file or the block reference is wrong; the message names the file and the key."""


def load_spec(path: Path) -> dict[str, Any]:
    """The automations file, checked for the keys this module reads.

    Raises:
        NotificationSetupError: naming the file, the automation and the key.
    """
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise NotificationSetupError(f"{path}: cannot read the automations file: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("automations"), list):
        raise NotificationSetupError(f"{path}: needs a mapping with an 'automations' list")
    block = spec.get("block") or {}
    if not isinstance(block, dict) or not block.get("type") or not block.get("name"):
        raise NotificationSetupError(f"{path}: 'block' needs 'type' (a block type slug) and 'name'")
    names = set()
    for index, item in enumerate(spec["automations"]):
        where = f"{path}: automations[{index}]"
        if not isinstance(item, dict):
            raise NotificationSetupError(f"{where} must be a mapping")
        unknown = sorted(set(item) - _AUTOMATION_KEYS)
        if unknown:
            raise NotificationSetupError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_AUTOMATION_KEYS)}")
        for key in ("name", "trigger", "body"):
            if not item.get(key):
                raise NotificationSetupError(f"{where}: '{key}' is required")
        if item["name"] in names:
            raise NotificationSetupError(
                f"{where}: name {item['name']!r} is used twice (automations are updated by name)"
            )
        names.add(item["name"])
    return spec


def build_automations(spec: dict[str, Any], block_document_id: UUID) -> list[Any]:
    """Prefect ``Automation`` objects (validated by Prefect's own schema), one per file entry.

    Raises:
        NotificationSetupError: an entry Prefect's schema refuses, naming the automation.
    """
    from prefect.automations import Automation
    from pydantic import ValidationError

    built = []
    for item in spec["automations"]:
        action = {"type": "send-notification", "block_document_id": block_document_id, "body": item["body"]}
        if item.get("subject"):
            action["subject"] = item["subject"]
        try:
            built.append(
                Automation.model_validate(
                    {
                        "name": item["name"],
                        "description": item.get("description", ""),
                        "enabled": item.get("enabled", True),
                        "tags": ["driftline"],
                        "trigger": item["trigger"],
                        "actions": [action],
                    }
                )
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
            )
            raise NotificationSetupError(f"automation {item['name']!r}: {problems}") from None
    return built


def _block_reference(spec: dict[str, Any]) -> tuple[str, str]:
    chosen = os.environ.get(BLOCK_ENV)
    if not chosen:
        return spec["block"]["type"], spec["block"]["name"]
    slug, _, name = chosen.partition("/")
    if not slug or not name:
        raise NotificationSetupError(
            f"{BLOCK_ENV}={chosen!r}: expected <block-type-slug>/<block-name>, e.g. slack-webhook/ops"
        )
    return slug, name


def ensure_block(spec: dict[str, Any]) -> tuple[UUID | None, str]:
    """The notification block's id (None when there is none to use) and a line saying which block it is.

    With ``DRIFTLINE_NOTIFY_URL`` a Custom Webhook block is created or overwritten; its URL is a template
    filled from the block's secrets, so neither the block's fields nor this output show it.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    slug, name = _block_reference(spec)
    url = os.environ.get(URL_ENV)
    if url:
        if slug != "custom-webhook":
            raise NotificationSetupError(
                f"{URL_ENV} makes a custom-webhook block; {BLOCK_ENV} names a {slug} block: set one of them"
            )
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        block = CustomWebhookNotificationBlock(
            name="driftline",
            url="{{notify_url}}",
            json_data={"subject": "{{subject}}", "body": "{{body}}", "text": "{{subject}}\n{{body}}"},
            secrets={"notify_url": url},
        )
        block_id = block.save(name, overwrite=True)
        return block_id, f"notification block {slug}/{name} (URL from {URL_ENV})"
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            return None, f"no notification block {slug}/{name}: set {URL_ENV} (or {BLOCK_ENV}) and deploy again"
    return document.id, f"notification block {slug}/{name} (existing)"


def apply_automations(path: Path = DEFAULT_FILE) -> list[str]:
    """Create or update (by name) every automation of the file; returns what was done, one line each.

    Raises:
        NotificationSetupError: the file or the block reference is wrong.
    """
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    spec = load_spec(path)
    block_id, block_line = ensure_block(spec)
    if block_id is None:
        return [f"notifications: {block_line}; no automation created"]
    lines = [f"notifications: {block_line}"]
    with get_client(sync_client=True) as client:
        for automation in build_automations(spec, block_id):
            existing = client.read_automations_by_name(automation.name)
            if existing:
                # The update endpoint refuses owner_resource (as prefect.automations.Automation.update knows).
                client.update_automation(
                    existing[0].id, AutomationCore(**automation.model_dump(exclude={"id", "owner_resource"}))
                )
                for duplicate in existing[1:]:  # a copy made by hand would notify twice
                    client.delete_automation(duplicate.id)
                lines.append(f"  updated automation {automation.name}")
            else:
                client.create_automation(AutomationCore(**automation.model_dump(exclude={"id"})))
                lines.append(f"  created automation {automation.name}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="automations YAML")
    args = parser.parse_args(argv)
    try:
        print("\n".join(apply_automations(args.file)))
    except NotificationSetupError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
