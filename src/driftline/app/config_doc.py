"""The configuration reference (docs/configuration.md), generated from the pydantic schema.

``python -m driftline.app.config_doc`` prints it; ``python -m driftline.app.config_doc --write`` rewrites
docs/configuration.md (``make docs``). A test fails when the file and the schema disagree, so the
reference cannot go stale.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from driftline.config import PipelineConfig, PipelineSettings

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"

HEADER = """# Configuration reference

Generated from the pydantic schema in `src/driftline/config.py` by `make docs`
(`python -m driftline.app.config_doc --write`); a test fails when this file and the schema disagree.

A pipeline is one YAML file (`driftline train --config my.yaml`); every key is optional and falls back to
the default below. `configs/default.yaml` is the demo's. Command-line options (`--data`, `--target`,
`--time-col`, `--horizon`, ...) override the matching keys, and `driftline train --set key=value`
(repeatable) sets any key without a file: the value is read as YAML (`--set splits.gap=3`,
`--set models.families=[logreg,lightgbm]`, `--set splits.test_size=null`) and validated like the file,
errors naming `--set` and the key; the other options win over it. Unknown keys are an error, so a typo
cannot pass silently.

```yaml
name: btc-vol
data: {{path: s3://market-data/daily/, symbol_col: ticker}}
target: {{kind: volatility, horizon: 5}}
models: {{families: [logreg, lightgbm]}}
runner: {{kind: dask, n_workers: 2}}
```

Sections: {sections}.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:  # a bounded member of a union, e.g. a number or "auto"
        bounds = _bounds([meta for a in args[1:] for meta in getattr(a, "metadata", [a])])
        return f"{_type_name(args[0])} ({bounds})" if bounds else _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.get_default(call_default_factory=True)
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        return f"{len(value)} built-in entries"
    dumped = json.dumps(value if not isinstance(value, tuple) else list(value), default=str)
    return f"`{dumped}`"


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for meta in metadata:
        for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("pattern", "matches")):
            value = getattr(meta, name, None)
            if value is not None:
                parts.append(f"{symbol} `{value}`")
    return ", ".join(parts)


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _nested_models(arg)]


def _table(model: type[BaseModel]) -> str:
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        description = field.description or ""
        constraints = _bounds(field.metadata)
        if constraints:
            description = f"{description} ({constraints})" if description else constraints
        description = description.replace("|", "\\|")
        rows.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    return "\n".join(rows)


def _doc(model: type[BaseModel]) -> str:
    return inspect.cleandoc(model.__doc__ or "").strip()


def render() -> str:
    """The whole reference, as Markdown."""
    top = PipelineConfig.model_fields
    sections = [name for name, field in top.items() if _nested_models(field.annotation)]
    out = [HEADER.format(sections=", ".join(f"[`{s}`](#{s})" for s in sections)).rstrip()]
    scalars = [name for name in top if name not in sections]
    out.append(
        "## Top level\n\n"
        + _doc(PipelineConfig)
        + "\n\n"
        + _table(PipelineConfig).split("\n", 2)[0]
        + "\n|---|---|---|---|\n"
        + "\n".join(
            line for line in _table(PipelineConfig).split("\n")[2:] if any(f"| `{s}` |" in line for s in scalars)
        )
    )
    extra: list[type[BaseModel]] = []
    for name in sections:
        model = _nested_models(top[name].annotation)[0]
        out.append(f"## {name}\n\n{_doc(model)}\n\n{_table(model)}")
        for field in model.model_fields.values():
            for nested in _nested_models(field.annotation):
                if nested not in extra:
                    extra.append(nested)
    out.extend(f"## {model.__name__}\n\n{_doc(model)}\n\n{_table(model)}" for model in extra)
    out.append(
        "## Run settings\n\nThe `settings` parameter of the train, retrain and monitor flows (`PipelineSettings`), "
        "the form of a custom run in the Prefect UI. " + _doc(PipelineSettings) + "\n\n" + _table(PipelineSettings)
    )
    return "\n\n".join(out).replace("\n\n\n", "\n\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m driftline.app.config_doc", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOC_PATH.name} instead of printing")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOC_PATH.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
