"""Application layer: experiments, sweeps, figures, reports and the ``spela-hw`` command line.

Imports the public API of :mod:`spela_hw`, :mod:`sim` and :mod:`mappings`; nothing imports it.

Public API (imported lazily, so that ``spela-hw --help`` does not load matplotlib or Dask):

Reports
    :class:`ReportConfig` (validated settings; ``from_toml``), :func:`build_report` ->
    :class:`ReportResult` (``spela-hw report``).
Sweeps
    :class:`SweepConfig` (``from_toml``), :func:`run_sweep` -> :class:`SweepResult`
    (``spela-hw sweep``), :func:`load_results`, :func:`results_frame`, :func:`pareto_mask`,
    :func:`write_sweep_report`.
Checking a report
    :func:`open_in_browser` -> :class:`BrowserCheck` (headless Chromium: console errors, screenshot).

>>> from reports import ReportConfig, build_report
>>> result = build_report(ReportConfig(epochs=1, out="quick-report"))
>>> result.index_html
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ReportConfig": "reports.config",
    "build_report": "reports.report",
    "ReportResult": "reports.report",
    "SweepConfig": "reports.sweep",
    "SweepResult": "reports.sweep",
    "run_sweep": "reports.sweep",
    "load_results": "reports.sweep",
    "results_frame": "reports.sweep",
    "pareto_mask": "reports.sweep",
    "write_sweep_report": "reports.sweep",
    "open_in_browser": "reports.browser",
    "BrowserCheck": "reports.browser",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reports' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
