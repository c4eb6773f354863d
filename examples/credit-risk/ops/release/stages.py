"""How a release run reports: one log line per stage with its time, and a progress display."""

import time
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

STAGES = ["train", "gate", "build", "smoke", "shadow", "canary", "release", "record"]


class StageFailed(RuntimeError):
    """A stage stopped the release; the message says why."""


class StageReport:
    """Times each stage, prints one log line per stage, and shows progress with rich."""

    def __init__(self, show_progress: bool, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, log_path=False)
        self.timings: dict[str, float] = {}
        self.progress = (Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  TimeElapsedColumn(), console=self.console, transient=False)
                         if show_progress else None)
        self.tasks = ({name: self.progress.add_task(f"[dim]{name}", total=1, start=False)
                       for name in STAGES} if self.progress else {})

    @contextmanager
    def stage(self, name: str):
        started = time.monotonic()
        if self.progress:
            self.progress.start_task(self.tasks[name])
            self.progress.update(self.tasks[name], description=f"[bold]{name}")
        outcome = {"status": "ok", "detail": ""}
        try:
            yield outcome
        except BaseException as error:
            outcome["status"] = "failed"
            outcome["detail"] = outcome["detail"] or str(error).splitlines()[0]
            raise
        finally:
            seconds = round(time.monotonic() - started, 2)
            self.timings[name] = seconds
            if self.progress:
                self.progress.update(self.tasks[name], completed=1,
                                     description=f"{name} ({outcome['status']})")
            line = f"stage {name}: {outcome['status']} in {seconds:.1f} s"
            self.console.log(line + (f" ({outcome['detail']})" if outcome["detail"] else ""))

    def skip(self, name: str, why: str) -> None:
        self.timings[name] = 0.0
        if self.progress:
            self.progress.start_task(self.tasks[name])
            self.progress.update(self.tasks[name], completed=1,
                                 description=f"[dim]{name} (skipped)")
        self.console.log(f"stage {name}: skipped ({why})")

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()
