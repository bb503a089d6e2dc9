"""Progress bars for long training runs: one bar per task, advancing through its stages.

Drawn with rich on standard error, so ``--json`` output on standard output stays clean; when
disabled (tests, notebooks, ``progress=False``) every call is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class StageProgress:
    """A context manager showing, per task, which stage it is in and how long it has taken."""

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._bars: dict[str, TaskID] = {}
        self._console = console

    def __enter__(self) -> StageProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.fields[name]:<10}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self._console or Console(stderr=True),
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start(self, name: str, stages: Sequence[str]) -> None:
        if self._progress is not None:
            self._bars[name] = self._progress.add_task(
                f"building the {stages[0]}…", total=len(stages), name=name
            )

    def advance(self, name: str, description: str) -> None:
        if self._progress is not None and name in self._bars:
            self._progress.update(self._bars[name], advance=1, description=description)

    def finish(self, name: str, description: str) -> None:
        if self._progress is not None and name in self._bars:
            bar = self._bars[name]
            total = self._progress.tasks[bar].total
            self._progress.update(bar, completed=total, description=description)
