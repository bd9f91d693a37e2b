"""docs/configuration.md is generated from the schema and must not go stale."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel

from driftline.app import config_doc
from driftline.config import PipelineConfig


def test_the_committed_reference_matches_the_schema():
    # The repository's docs/ folder, wherever the module lives (a move into driftline/app/ once wrote src/docs/).
    assert Path(__file__).resolve().parents[2] / "docs" / "configuration.md" == config_doc.DOC_PATH
    committed = config_doc.DOC_PATH.read_text(encoding="utf-8")
    assert committed == config_doc.render(), "docs/configuration.md is stale: run `make docs`"


def test_every_key_of_every_section_is_documented():
    text = config_doc.render()
    for name, field in PipelineConfig.model_fields.items():
        assert f"| `{name}` |" in text or f"## {name}\n" in text, name
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            body = text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
            for key in section.model_fields:
                assert f"| `{key}` |" in body, f"{name}.{key}"


def test_the_example_in_the_reference_is_a_valid_config():
    example = re.search(r"```yaml\n(.*?)```", config_doc.render(), re.S).group(1)
    config = PipelineConfig.model_validate(yaml.safe_load(example))
    assert config.runner.kind == "dask" and config.target.kind == "volatility"


def test_a_new_field_changes_the_reference(monkeypatch):
    from pydantic import Field, create_model

    from driftline.config import RunnerConfig

    extended = create_model(
        "RunnerConfig", __base__=RunnerConfig, spill_dir=(str, Field(default="/tmp", description="where workers spill"))
    )
    monkeypatch.setattr(PipelineConfig.model_fields["runner"], "annotation", extended)
    assert '| `spill_dir` | str | `"/tmp"` | where workers spill |' in config_doc.render()
