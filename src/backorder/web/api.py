"""REST API v1 under /api/v1 (issues 3 and 5)."""

from __future__ import annotations

from fastapi import APIRouter

from backorder.bootstrap import Application


def build_router(application: Application) -> APIRouter:
    router = APIRouter()
    return router
