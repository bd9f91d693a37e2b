"""The fit spec (``PipelineConfig.fit_spec``) is both what every fitting task receives and, hashed, its cache
key: a setting a fit can read cannot be missing from the key, and a setting that changes the spec changes it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import ValidationError

from driftline.config import FitSpec, PipelineConfig, TargetConfig
from tasks.caching import fit_cache_key

BASE = PipelineConfig()

_STRINGS = (
    "sliding",
    "expanding",
    "streaming",
    "auto",
    "isotonic",
    "beta",
    "sigmoid",
    "brier",
    "log_loss",
    "precision_at_k",
    "none",
    "direction",
    "label",
    "dask",
    "weekdays",
    "chi2",
    "null",
    "fail",
    "warn",
    "quarantine",
    "integer",
    "7D",
    "x",
)
_FOR_NONE = (7, 0.5, "7D", "x", "fail", "number", ["logreg"], True, "cp1252", "Europe/Berlin", 0.9)
# Leaves that have no other valid value: a contract file must exist; symbol and timestamp are always
# required strings and timestamps (no bounds).
_FIXED = {
    ("contract", "file"),
    ("target", "ahead"),  # a label target's: the base volatility target refuses any other value (tested below)
    *(("contract", "columns", c, k) for c in ("symbol", "timestamp") for k in ("min", "max", "required")),
}


def _leaves(tree: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(tree, dict) and tree:
        return [leaf for key, value in tree.items() for leaf in _leaves(value, (*path, key))]
    return [path]


def _candidates(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2]
    if isinstance(value, float):
        return [value * 1.1, value * 0.9, value + 0.01, 0.5]
    if isinstance(value, str):  # or a bool, a number or null, for a setting decided per run by default ("auto")
        return [s for s in _STRINGS if s != value] + [False, True, 0.9, None]
    if isinstance(value, list | tuple):
        items = list(value)
        if items and all(isinstance(v, int) for v in items):
            return [[*items, max(items) + 1], items[:-1]]
        return [items[:-1], items[1:], ["logreg"]]
    if isinstance(value, dict):  # an empty mapping, e.g. models.params
        return [{"logreg": {"C": 0.5}}]
    return list(_FOR_NONE)


def _set(tree: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def _perturbed(path: tuple[Any, ...]) -> PipelineConfig | None:
    """The default config with the leaf at ``path`` set to another valid value (None: none found)."""
    current = BASE.model_dump()
    for key in path:
        current = current[key]
    for candidate in _candidates(current):
        try:
            changed = PipelineConfig.model_validate(_set(BASE.model_dump(), path, candidate))
        except ValidationError:
            continue
        if changed != BASE:
            return changed
    return None


def _keys(spec: FitSpec) -> tuple[str, str, str]:
    return (
        fit_cache_key("walk-forward", "digest", spec),
        fit_cache_key("fit-fold", "digest", spec, [1, "logreg"]),
        fit_cache_key("challenger", "digest", spec, "logreg"),
    )


def test_every_config_key_that_changes_the_fit_spec_changes_every_fit_key():
    """Each leaf of the whole config, set to another valid value: where the fit spec changes, the walk-forward,
    fold and challenger keys all change; the rest of the config (data, contract, features, target building,
    promotion, drift, runner) reaches a fit only through the feature set's content hash."""
    base_keys = _keys(BASE.fit_spec)
    shaping, unperturbed = set(), []
    for path in _leaves(BASE.model_dump()):
        variant = _perturbed(path)
        if variant is None:
            unperturbed.append(path)
            continue
        if variant.fit_spec != BASE.fit_spec:
            shaping.add(".".join(map(str, path)))
            changed = _keys(variant.fit_spec)
            assert all(a != b for a, b in zip(changed, base_keys, strict=True)), path
        else:
            assert _keys(variant.fit_spec) == base_keys, path
    assert set(unperturbed) == _FIXED, f"no valid other value found for {set(unperturbed) - _FIXED}: extend _candidates"
    # Every leaf of the fitting sections shapes the spec, and so do the target facts the fit depends on.
    for section in ("splits", "calibration", "models", "metrics", "threshold", "scale"):
        for path in _leaves(BASE.model_dump()[section]):
            assert ".".join(map(str, (section, *path))) in shaping
    assert {"target.kind", "target.horizon", "target.label_delay"} <= shaping
    # One promotion setting reaches the fit: the bootstrap block, which calibration.require_edge's interval on
    # the walk-forward rows shares with the promotion test.
    assert "promotion.block_length" in shaping
    outside = shaping - {"promotion.block_length"}
    assert not any(key.startswith(("drift.", "promotion.", "runner.", "evaluation.", "data.")) for key in outside)


class _WithNewSetting(FitSpec):
    new_setting: int = 0


def test_a_field_added_to_the_spec_is_in_the_key_without_touching_the_key():
    spec = BASE.fit_spec.model_dump()
    before, after = _WithNewSetting(**spec, new_setting=0), _WithNewSetting(**spec, new_setting=1)
    assert fit_cache_key("walk-forward", "digest", before) != fit_cache_key("walk-forward", "digest", after)
    assert fit_cache_key("walk-forward", "digest", before) == fit_cache_key(
        "walk-forward", "digest", _WithNewSetting(**spec)
    )


def test_a_spec_field_without_a_setting_of_the_same_name_fails_at_once():
    # The config fills each spec field from its attribute of the same name: a new field needs a setting.
    with pytest.raises(AttributeError, match="new_setting"):
        BASE._spec(_WithNewSetting)


def test_the_spec_is_frozen_and_strict():
    with pytest.raises(ValidationError):
        BASE.fit_spec.gap = 99  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        FitSpec(**BASE.fit_spec.model_dump(), unknown=1)


def test_fitting_tasks_see_the_spec_not_the_config():
    """What a fitting task is given is what its key covers: none of them receives the whole config."""
    from tasks import training

    fitting = (
        training.walk_forward_task,
        training.fit_fold_task,
        training.combine_folds_task,
        training.fit_challenger_task,
    )
    for task in fitting:
        hints = {name: p.annotation for name, p in inspect.signature(task.fn).parameters.items()}
        assert "spec" in hints and hints["spec"] in (FitSpec, "FitSpec"), task.name
        assert not any("PipelineConfig" in str(annotation) for annotation in hints.values()), task.name


def test_the_core_fitting_functions_take_the_spec_whole():
    """The tasks pass their spec on as it is: no core fitting function takes a section of it, the gap or the
    direction flag on its own, so what a fit reads is what the task's key hashed."""
    from driftline import streaming, training

    sections = {name for name, field in FitSpec.model_fields.items() if hasattr(field.annotation, "model_fields")}
    fitting = (
        training.walk_forward_jobs,
        training.run_fold_job,
        training.combine_fold_results,
        training.run_walk_forward,
        training.fit_challenger,
        streaming.streaming_folds,
        streaming.run_fold_streaming,
        streaming.run_walk_forward_streaming,
        streaming.fit_challenger_streaming,
    )
    assert sections == {"splits", "calibration", "models", "metrics", "threshold", "scale"}
    for function in fitting:
        parameters = inspect.signature(function).parameters
        assert "spec" in parameters and parameters["spec"].annotation in (FitSpec, "FitSpec"), function.__name__
        loose = set(parameters) & (sections | {"gap", "label_delay", "price_target", "is_direction", "models_config"})
        assert not loose, (function.__name__, loose)


@pytest.mark.parametrize(
    ("kind", "needs_label", "price_target", "is_direction"),
    [("label", True, False, False), ("direction", False, True, True), ("volatility", False, True, False)],
)
def test_target_facts(kind, needs_label, price_target, is_direction):
    target = TargetConfig(kind=kind)
    assert (target.needs_label, target.price_target, target.is_direction) == (needs_label, price_target, is_direction)
    config = PipelineConfig.model_validate({"target": {"kind": kind}, "data": {"target_col": "y"}})
    assert config.fit_spec.is_direction is is_direction
    assert config.fit_spec.gap == (
        1 if needs_label else 5
    )  # the label is known one row later, a price target's a horizon later


def test_a_label_some_rows_on_keys_its_fits_apart():
    """``target.ahead`` moves the label's known delay (the purge gap, the newest lag): a label 6 rows on is not
    the label as written, and no fit of one is served from the other's cache."""
    data = {**BASE.model_dump()["data"], "target_col": "y"}
    label = PipelineConfig.model_validate({**BASE.model_dump(), "data": data, "target": {"kind": "label"}})
    later = PipelineConfig.model_validate({**BASE.model_dump(), "data": data, "target": {"kind": "label", "ahead": 6}})
    assert (label.fit_spec.label_delay, later.fit_spec.label_delay) == (1, 6)
    assert all(a != b for a, b in zip(_keys(label.fit_spec), _keys(later.fit_spec), strict=True))
