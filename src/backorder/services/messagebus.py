"""The message bus: one command, one transaction. Handler, rules and outbox rows commit
together, so a state change and the messages it causes are never separated."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from backorder.domain import commands, events
from backorder.domain.errors import DomainError
from backorder.services.handlers import HANDLERS, Handler, HandlerContext
from backorder.services.ports import UnitOfWork
from backorder.services.rules import RuleSet

log = logging.getLogger(__name__)


class BatchItemFailed(DomainError):
    """Command number ``index`` (0-based) of an ImportBatch failed; nothing was applied."""

    def __init__(self, index: int, cause: DomainError) -> None:
        super().__init__(str(cause))
        self.index = index
        self.cause = cause


class TransientConflict(Exception):
    """A store conflict (deadlock, serialisation failure, busy database) worth retrying."""


class MessageBus:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        context: HandlerContext,
        rules: RuleSet,
        handlers: dict[type[commands.Command], Handler] | None = None,
        max_attempts: int = 5,
    ) -> None:
        self._uow_factory = uow_factory
        self._context = context
        self._rules = rules
        self._handlers = handlers or HANDLERS
        self._max_attempts = max_attempts

    @property
    def context(self) -> HandlerContext:
        return self._context

    def handle(self, command: commands.Command) -> list[events.Event]:
        """Apply one command (or an ImportBatch, all or nothing) in one transaction."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._handle_once(command)
            except TransientConflict:
                if attempt == self._max_attempts:
                    raise
                log.info("transient store conflict, retrying command (attempt %d)", attempt)
        raise AssertionError("unreachable")

    def _handle_once(self, command: commands.Command) -> list[events.Event]:
        with self._uow_factory() as uow:
            happened: list[events.Event] = []
            for index, each in enumerate(_flatten([command])):
                try:
                    self._handlers[type(each)](each, uow, self._context)
                except DomainError as exc:
                    if isinstance(command, commands.ImportBatch):
                        raise BatchItemFailed(index, exc) from exc
                    raise
                happened.extend(uow.collect_events())
            uow.outbox.add(self._rules.actions(happened))
            uow.commit()
            return happened


def _flatten(items: Iterable[commands.Command]) -> Iterable[commands.Command]:
    for item in items:
        if isinstance(item, commands.ImportBatch):
            yield from _flatten(item.commands)
        else:
            yield item
