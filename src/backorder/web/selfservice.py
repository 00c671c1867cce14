"""The customer self-service page behind signed links (issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

from backorder.bootstrap import Application


def build_router(application: Application) -> APIRouter:
    router = APIRouter()
    return router
