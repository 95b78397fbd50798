"""strawberry's schema-extension hooks, wrapped once per extension class, not per request.

For each of the four stages of a request (operation, parsing, validation, execution)
strawberry looks at every extension's class for the stage's hook and, for a generator hook,
wraps the method bound to the request's extension instance with
``contextlib.contextmanager``: an ``inspect.isgeneratorfunction`` check and a
``functools.wraps`` copy per hook per request, about 200 Python calls a request for our six
extensions, the largest fixed cost GraphQL adds to a report (bench/PROPOSALS.md, R22).

Which hook a class has, and what kind it is, does not change between requests (strawberry
itself reads it from the class), so it is decided once per (class, stage) here, and
``contextlib.contextmanager`` is applied once to the class's function; each request then
calls it with its own extension instance, which builds the same generator context manager
strawberry's wrapped bound method builds. Hooks that are not generator functions are left
to strawberry's own code (none of ours); so is the stream-result stage.

Likewise, the results of extensions whose class keeps ``SchemaExtension.get_results``
(an empty dict: none of ours adds any) are not asked for and awaited one by one.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.utils.await_maybe import await_maybe

if TYPE_CHECKING:
    from strawberry.types import ExecutionContext

# (extension class, hook name) -> None (no hook), a context-manager factory taking the
# extension and whether it is async, or _STRAWBERRY (strawberry decides, per request).
_STRAWBERRY = object()
_HOOKS: dict[tuple[type[SchemaExtension], str], Any] = {}


def _analyse(cls: type[SchemaExtension], name: str, default: object) -> Any:
    hook = getattr(cls, name)
    if hook is default:
        return None
    if inspect.isgeneratorfunction(hook):
        return contextlib.contextmanager(hook), False
    if inspect.isasyncgenfunction(hook):
        return contextlib.asynccontextmanager(hook), True
    return _STRAWBERRY


class _ClassHooks(ExtensionContextManagerBase):
    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        key = (type(extension), self.HOOK_NAME)
        found = _HOOKS.get(key, _HOOKS)  # the dict itself: not analysed yet
        if found is _HOOKS:
            found = _HOOKS[key] = _analyse(key[0], self.HOOK_NAME, self.default_hook)
        if found is None:
            return None
        if found is _STRAWBERRY:
            return super().get_hook(extension)
        factory, is_async = found
        hook: Callable[[], Any] = partial(factory, extension)
        return WrappedHook(extension=extension, hook=hook, is_async=is_async)


class _Operation(_ClassHooks, OperationContextManager):
    pass


class _Validation(_ClassHooks, ValidationContextManager):
    pass


class _Parsing(_ClassHooks, ParsingContextManager):
    pass


class _Executing(_ClassHooks, ExecutingContextManager):
    pass


class ClassHookRunner(SchemaExtensionsRunner):
    """strawberry's runner, with hooks looked up once per extension class."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self.extensions:
            if type(extension).get_results is not _NO_RESULTS:
                data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data


_NO_RESULTS = SchemaExtension.get_results
