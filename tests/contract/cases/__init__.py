"""Contract cases, one module per connector kind, each exposing ``CASE``."""

from __future__ import annotations

import importlib
import pkgutil

from tests.contract.framework import ContractCase


def all_cases() -> list[ContractCase]:
    cases = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.append(module.CASE)
    return cases
