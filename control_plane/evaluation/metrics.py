"""Metrics: `score(prediction, reference) -> float` in [0, 1] per record; the result is their mean.

Built in: `exact_match` (equal after trimming surrounding whitespace) and `contains` (the reference occurs
in the answer). Others plug in by name through the `llmfleet.eval_metrics` entry-point group, or directly
as `package.module:function`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

Metric = Callable[[str, str], float]
ENTRY_POINT_GROUP = "llmfleet.eval_metrics"


class UnknownMetric(ValueError):
    pass


def exact_match(prediction: str, reference: str) -> float:
    return 1.0 if prediction.strip() == reference.strip() else 0.0


def contains(prediction: str, reference: str) -> float:
    return 1.0 if reference.strip() in prediction else 0.0


BUILTIN: dict[str, Metric] = {"exact_match": exact_match, "contains": contains}


def resolve(name: str) -> Metric:
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise UnknownMetric(f"cannot load metric {name!r}: {error}") from None
    else:
        matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not matches:
            known = sorted([*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))])
            raise UnknownMetric(f"unknown metric {name!r} (known: {', '.join(known)}; or give module:function)")
        found = matches[0].load()
    if not callable(found):
        raise UnknownMetric(f"metric {name!r} is not callable")
    metric: Metric = found
    return metric


def score_all(metric: Metric, predictions: Sequence[str | None], references: Sequence[str]) -> list[float]:
    """Per-record scores; a record without an answer (its request failed) scores 0."""
    scores = []
    for prediction, reference in zip(predictions, references, strict=True):
        if prediction is None:
            scores.append(0.0)
            continue
        value = float(metric(prediction, reference))
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the metric returned {value}, outside [0, 1]")
        scores.append(value)
    return scores


def label(name: str) -> str:
    """The metric's name as the registry records it (a label): `module:function` → `function`."""
    short = name.rpartition(":")[2] if ":" in name else name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", short).lstrip("._-")[:64]
    return cleaned or "metric"
