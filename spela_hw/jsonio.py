"""The project's one JSON writer: strict JSON that any parser reads.

Every command's ``--json`` output and every JSON result file goes through :func:`dumps`.
Python's :func:`json.dumps` writes non-finite floats as the bare tokens ``NaN`` and ``Infinity``,
which are not JSON (strict parsers, ``jq`` and JavaScript reject them), and its ``default`` hook is
never called for floats. So the values are converted first, with these conventions:

- NaN means "not computed" (for example the energy of a rule the hardware model does not price)
  and is written as ``null`` (:data:`NOT_COMPUTED`);
- an infinite value is a real answer, "unbounded" (for example the lifetime of a device whose
  cells are never written), and is written as the string ``"inf"`` (``"-inf"``), which Python's
  ``float()`` reads back;
- NumPy scalars and arrays become Python numbers and lists, paths become strings.

Anything else that is not JSON raises ``TypeError`` naming its type: nothing is written as a
guess.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath

import numpy as np

__all__ = ["NOT_COMPUTED", "dumps", "to_json_value"]

#: How a value that was not computed (NaN) is written.
NOT_COMPUTED = None


def to_json_value(obj):
    """``obj`` with every value made JSON-representable by the conventions of this module."""
    if isinstance(obj, dict):
        return {_key(k): to_json_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_value(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json_value(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(float(obj))
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of :func:`to_json_value` of ``obj``, refusing NaN (``allow_nan=False``).

    Keyword arguments (``indent``, ``sort_keys``, ``separators``) pass through to
    :func:`json.dumps`.
    """
    return json.dumps(to_json_value(obj), allow_nan=False, default=_refuse, **kwargs)


def _float(x: float):
    if math.isnan(x):
        return NOT_COMPUTED
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _key(k):
    return k.item() if isinstance(k, np.generic) else k


def _refuse(obj):
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
