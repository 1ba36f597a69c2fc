"""The labos exception hierarchy.

Every error labos raises on purpose derives from :class:`LabosError`; where a builtin
exception has the same meaning the subclass inherits it too (as Prefect does with
``ParameterBindError(TypeError, PrefectException)``), so callers may catch either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

SHOWN_CHARS = 80
"""How much of a user's value an error message echoes."""


def shown(value: object, limit: int = SHOWN_CHARS, *, quote: bool = True) -> str:
    """``repr(value)`` (``str`` with ``quote=False``, and for exceptions) cut to ``limit`` characters.

    Error messages echo what was wrong; a 10 MB string must not come back in full, so a
    cut value says how long it was.
    """
    text = repr(value) if quote and not isinstance(value, BaseException) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}... ({len(text):,} characters)"


class LabosError(Exception):
    """Root of every error raised by labos on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a user-supplied document.

    Parameters
    ----------
    path
        Dotted location inside the document, e.g. ``space.temperature.high``.
    message
        What is wrong, echoing the offending value.
    line
        1-based line in the source file, when known.
    """

    path: str
    message: str
    line: int | None = None

    MAX_PATH: ClassVar[int] = 200
    MAX_MESSAGE: ClassVar[int] = 2000

    def __post_init__(self) -> None:
        # a last bound on what is echoed: a hostile key or value must not fill the terminal
        if len(self.path) > self.MAX_PATH:
            object.__setattr__(self, "path", self.path[: self.MAX_PATH - 3] + "...")
        if len(self.message) > self.MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[: self.MAX_MESSAGE - 3] + "...")

    def format(self, source: str | None = None) -> str:
        """Render as ``source:line: path: message`` (parts omitted when unknown)."""
        where = ""
        if source is not None:
            where = f"{source}:{self.line}: " if self.line is not None else f"{source}: "
        elif self.line is not None:
            where = f"line {self.line}: "
        loc = f"{self.path}: " if self.path else ""
        return f"{where}{loc}{self.message}"


class SpecError(LabosError, ValueError):
    """A campaign (or other) specification is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        lines = [p.format(source) for p in problems]
        super().__init__("\n".join(lines) if lines else "invalid specification")


class ConfigurationError(LabosError, ValueError):
    """A component (planner, instrument, driver) was configured wrongly."""


class OptionError(ConfigurationError):
    """A setting is wrong, and where it is known.

    ``option`` names an instrument option (dotted, inside the instrument's ``options``);
    ``path`` a setting elsewhere in the campaign (``simulation.world``).
    """

    def __init__(self, message: str, *, option: str | None = None, path: str | None = None) -> None:
        self.option = option
        self.path = path
        super().__init__(message)


class RegistryError(LabosError, KeyError):
    """A registry lookup failed or a name was registered twice."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class OutOfBoundsError(LabosError, ValueError):
    """A value lies outside the declared search space or a device limit."""


class InterlockError(OutOfBoundsError):
    """A safety interlock or an occupancy rule refused an action before anything moved."""


class DeviceFault(LabosError, RuntimeError):
    """An instrument reported a fault (jam, timeout, empty reservoir, ...)."""

    def __init__(self, device: str, message: str, *, transient: bool = False) -> None:
        self.device = device
        self.transient = transient
        super().__init__(f"{device}: {message}")


class ActionTimeout(DeviceFault, TimeoutError):
    """An action ran past its time limit and was stopped on the instrument; its state is known again."""


class InstrumentStateUnknown(DeviceFault):
    """An action that would not end, even when stopped: nothing may touch its sample until someone checks.

    The campaign stops (no recovery moves: a robot must not reach into an instrument
    whose state is unknown); the experiment is recorded failed with this message.
    """


class AnalysisError(LabosError, ValueError):
    """Raw data could not be turned into objective values."""


class StoreError(LabosError, RuntimeError):
    """The campaign store could not be read or written."""


class RunStoreError(StoreError):
    """A Bluesky run could not be written to, or read from, tiled."""
