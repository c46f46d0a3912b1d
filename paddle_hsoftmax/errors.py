"""The one root of the errors a user can cause: bad input, bad settings, a run that diverged.

``train.py`` turns a :class:`UserError` (and only that) into one line on stderr and exit status 2:
the message names the file and line, or the flag as the user types it (``--layers must be >= 1,
got 0``), and says what to do. Every other exception is a bug or a failure of the machine, and keeps
its traceback, so that a ``ValueError`` raised by a mistake in the code is never mistaken for a
complaint about the input.

Subclasses: :class:`ConfigError` (a setting out of range, an unknown key in a config file, a
``--resume`` whose settings change the model), :class:`~paddle_hsoftmax.data.text.CorpusError` (a
file that cannot be read), :class:`~paddle_hsoftmax.trainer.TrainingDiverged` and
:class:`~paddle_hsoftmax.output.base.MemoryBudgetError` (an allocation predicted not to fit).
:class:`ConfigError` and :class:`CorpusError` are also ``ValueError`` s: code that called the
readers and the config classes before this root existed catches them as such.
"""

from __future__ import annotations

__all__ = ["UserError", "ConfigError"]


class UserError(Exception):
    """An error in what the user gave (input files, settings) or chose (a learning rate that
    diverged); its message is one line that names the culprit."""


class ConfigError(UserError, ValueError):
    """A setting that breaks its rule; the message names the flag as typed (``--dropout``) and
    the value seen."""
