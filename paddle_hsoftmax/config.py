"""Settings declared once: dataclass fields that carry their flag, help, choices and rule.

Idea (as HF's ``HfArgumentParser`` does): a task's settings are one dataclass; each field says, in
its ``metadata``, the flag the user types, the help line, the allowed choices or bounds, and whether
it changes the model's shape. From that one declaration come

- the command-line flags (:func:`add_arguments`), with the defaults shown in ``--help``;
- validation (:class:`Settings.__post_init__`): every rule checked when the object is built, each
  error a :class:`~paddle_hsoftmax.errors.ConfigError` naming the flag as the user types it
  (``--layers must be >= 1, got 0``), before any command touches its output directory;
- composition with a config file (:func:`compose`): defaults < ``--config FILE`` (JSON, or TOML
  read with :mod:`tomllib`) < flags; a key the settings do not have is an error naming it and the
  file;
- the ``--resume`` check (:func:`shape_differences`): settings that change the model's shape
  must equal the run's.

Example::

    @dataclasses.dataclass
    class MyConfig(Settings):
        hidden_size: int = setting(128, flag="--hidden", help="LSTM size", min=1, shape=True)
        dropout: float = setting(0.3, help="dropout rate", min=0, below=1)

    parser.add_argument("--config")
    add_arguments(parser, MyConfig)
    (config,) = compose([MyConfig], parser.parse_args(argv), config_file=args.config)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type

from .errors import ConfigError

__all__ = ["setting", "Settings", "flag_of", "flags_of", "add_arguments", "load_config_file", "compose", "shape_settings",
           "shape_differences", "check_field"]

_UNSET = dataclasses.MISSING


def setting(default: Any = _UNSET, *, flag: Optional[str] = None, help: str = "", choices: Optional[Sequence] = None,
            min: Optional[float] = None, max: Optional[float] = None, above: Optional[float] = None,
            below: Optional[float] = None, hint: str = "", shape: bool = False, cli: bool = True,
            metavar: Optional[str] = None, group: Optional[str] = None, aliases: Sequence[str] = (),
            default_factory: Any = _UNSET) -> Any:
    """A dataclass field with its command-line declaration in ``metadata``.

    Args:
        default, default_factory: as for :func:`dataclasses.field`.
        flag: what the user types (default: ``--`` + the name with ``-`` for ``_``).
        help: the ``--help`` line.
        choices: the allowed values.
        min, max: inclusive bounds; above, below: exclusive bounds.
        hint: appended to a bound's error in brackets (``0 = off``).
        shape: the setting changes the model's parameters' shapes (``--resume`` refuses a change).
        cli: False for a setting that has no flag (set by code, or only in a config file).
        metavar: argparse's metavar.
        group: fields of the same group are mutually exclusive flags (``--dataset`` / ``--train-file``).
        aliases: other flags for the same setting (``--train`` for ``--train-file``); errors name
            ``flag``. (``python -m paddle.distributed.launch`` takes abbreviations of its own
            options from anywhere on the command line and refuses ``--train`` as an ambiguous
            ``--trainers``: a primary flag must not be a prefix of a launcher option.)
    """
    meta = {"flag": flag, "help": help, "choices": tuple(choices) if choices is not None else None, "min": min,
            "max": max, "above": above, "below": below, "hint": hint, "shape": shape, "cli": cli,
            "metavar": metavar, "group": group, "aliases": tuple(aliases)}
    if default_factory is not _UNSET:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_of(f: dataclasses.Field) -> str:
    """The flag of field ``f`` as the user types it."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def flags_of(f: dataclasses.Field) -> Tuple[str, ...]:
    """Every flag of field ``f``: its flag, then its aliases."""
    return (flag_of(f),) + tuple(f.metadata.get("aliases") or ())


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def check_field(f: dataclasses.Field, value: Any) -> None:
    """Raise :class:`ConfigError` if ``value`` breaks field ``f``'s choices or bounds (``None`` is
    allowed where it is the default: "not set")."""
    m = f.metadata
    if value is None and f.default is None:
        return
    flag = flag_of(f)
    if m.get("choices") is not None:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v not in m["choices"]:
                raise ConfigError(f"{flag} must be one of {', '.join(map(str, m['choices']))}, got {v!r}")
    lo, hi, above, below = m.get("min"), m.get("max"), m.get("above"), m.get("below")
    if all(b is None for b in (lo, hi, above, below)) or isinstance(value, (str, list, tuple)):
        return
    ok = ((lo is None or value >= lo) and (hi is None or value <= hi) and (above is None or value > above)
          and (below is None or value < below))
    if ok:
        return
    if (lo is not None or above is not None) and (hi is not None or below is not None):
        left = f"[{_fmt(lo)}" if lo is not None else f"({_fmt(above)}"
        right = f"{_fmt(hi)}]" if hi is not None else f"{_fmt(below)})"
        rule = f"in {left}, {right}"
    elif lo is not None:
        rule = f">= {_fmt(lo)}"
    elif above is not None:
        rule = f"> {_fmt(above)}"
    elif hi is not None:
        rule = f"<= {_fmt(hi)}"
    else:
        rule = f"< {_fmt(below)}"
    hint = f" ({m['hint']})" if m.get("hint") else ""
    raise ConfigError(f"{flag} must be {rule}{hint}, got {_fmt(value)}")


class Settings:
    """Base of the settings dataclasses: building one checks every field's rule, then
    :meth:`check` (the rules that join several fields)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.metadata:
                check_field(f, getattr(self, f.name))
        self.check()

    def check(self) -> None:
        """Rules that join several settings; raise :class:`ConfigError` naming the flags."""

    @classmethod
    def flag(cls, name: str) -> str:
        """The flag of setting ``name`` (``"hidden_size"`` -> ``"--hidden"``)."""
        return flag_of(_fields(cls)[name])


def _fields(cls) -> Dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _types(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(tp: Any) -> Tuple[Any, bool]:
    """``(element type, is_list)`` of an annotation: ``Optional[int]`` -> int, ``List[str]`` -> (str, True)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else (str, False)
    if origin in (list, tuple, List, Tuple, Sequence, typing.Sequence):
        args = typing.get_args(tp)
        return (args[0] if args else str), True
    return tp, False


def add_arguments(parser: argparse.ArgumentParser, cls: Type, defaults: Optional[Mapping[str, Any]] = None) -> None:
    """Add one flag per field of ``cls`` that has a ``setting`` declaration with ``cli``.

    Flags default to "not given" (``argparse.SUPPRESS``), so :func:`compose` can tell a flag the
    user typed from a default; ``--help`` shows the dataclass default (or ``defaults[name]``)."""
    types = _types(cls)
    groups: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        m = f.metadata
        if not m or not m.get("cli", True):
            continue
        default = (defaults or {}).get(f.name, f.default if f.default is not _UNSET else None)
        if f.default_factory is not _UNSET and not (defaults and f.name in defaults):  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        help_text = (m.get("help") or "").replace("%", "%%")
        if default not in (None, "", [], ()) and not isinstance(default, bool):
            help_text = f"{help_text} (default: {' '.join(map(str, default)) if isinstance(default, (list, tuple)) else default})".strip()
        target = parser
        if m.get("group"):
            if m["group"] not in groups:
                groups[m["group"]] = parser.add_mutually_exclusive_group()
            target = groups[m["group"]]
        tp, is_list = _base_type(types[f.name])
        kwargs: Dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text or None}
        if tp is bool:
            # off by default: a switch (--crf); on by default: --x / --no-x (as HfArgumentParser)
            kwargs["action"] = argparse.BooleanOptionalAction if default else "store_true"
            if default:
                kwargs["help"] = f"{help_text} (default: on)".strip()
        else:
            if m.get("choices") is None:
                kwargs["metavar"] = flag_of(f).lstrip("-").replace("-", "_").upper()
            kwargs["type"] = tp if tp in (int, float) else str
            if is_list:
                kwargs["nargs"] = "+"
            if m.get("choices") is not None:
                kwargs["choices"] = m["choices"]
            if m.get("metavar"):
                kwargs["metavar"] = m["metavar"]
        target.add_argument(flag_of(f), *(m.get("aliases") or ()), **kwargs)


def load_config_file(path: str) -> Dict[str, Any]:
    """The table of a JSON or TOML (``.toml``) config file.

    Raises:
        ConfigError: unreadable, not valid JSON/TOML, or not a table of settings.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read ({exc.strerror or exc})") from None
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path}: not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"--config {path}: not valid {kind} ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a table of settings, got a {type(data).__name__}")
    return data


def _coerce(path: str, key: str, f: dataclasses.Field, tp: Any, value: Any) -> Any:
    """A config-file value checked against the field's type (an int is a valid float)."""
    base, is_list = _base_type(tp)
    if value is None and f.default is None:
        return None
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}

    def one(v):
        if base is bool and isinstance(v, bool):
            return v
        if base is int and isinstance(v, int) and not isinstance(v, bool):
            return v
        if base is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if base is str and isinstance(v, str):
            return v
        raise ConfigError(f"--config {path}: {key} must be {names.get(base, base.__name__)}, got {v!r}")

    if is_list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"--config {path}: {key} must be a list, got {value!r}")
        return [one(v) for v in value]
    return one(value)


def compose(classes: Sequence[Type], namespace: argparse.Namespace, config_file: Optional[str] = None,
            defaults: Optional[Mapping[str, Any]] = None) -> List[Any]:
    """One instance of each of ``classes`` from defaults < ``config_file`` < the flags given.

    A config-file key may be a field's name (``hidden_size``) or its flag without dashes
    (``hidden``, ``embed-dim``); an unknown key is a :class:`ConfigError` naming the key and the file.
    ``defaults`` overrides a dataclass default (a command's own ``--output-dir`` default)."""
    given = vars(namespace)
    keys: Dict[str, Tuple[int, dataclasses.Field]] = {}
    for i, cls in enumerate(classes):
        for f in dataclasses.fields(cls):
            names = [flag.lstrip("-") for flag in flags_of(f)]
            for k in {f.name, *names, *(n.replace("-", "_") for n in names)}:
                keys.setdefault(k, (i, f))
    values: List[Dict[str, Any]] = [dict() for _ in classes]
    for i, cls in enumerate(classes):
        for f in dataclasses.fields(cls):
            if defaults and f.name in defaults:
                values[i][f.name] = defaults[f.name]
    if config_file:
        for key, value in load_config_file(config_file).items():
            if key not in keys:
                known = sorted({flag_of(f).lstrip("-") for cls in classes for f in dataclasses.fields(cls)
                                if f.metadata and f.metadata.get("cli", True)})
                raise ConfigError(f"--config {config_file}: unknown setting {key!r} (known: {', '.join(known)})")
            i, f = keys[key]
            values[i][f.name] = _coerce(config_file, key, f, _types(classes[i])[f.name], value)
    for i, cls in enumerate(classes):
        for f in dataclasses.fields(cls):
            if f.name in given and f.metadata and f.metadata.get("cli", True):
                values[i][f.name] = given[f.name]
    return [cls(**v) for cls, v in zip(classes, values)]


def shape_settings(cls: Type) -> List[str]:
    """Names of the fields declared ``shape=True``."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("shape")]


def shape_differences(cls: Type, old: Mapping[str, Any], new: Any) -> List[str]:
    """``["--hidden 64 (run) vs 128"]`` for every shape setting of ``new`` that differs from the
    run's recorded ``old`` settings (a setting the record lacks counts as its default)."""
    out = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("shape"):
            continue
        before = old.get(f.name, f.default if f.default is not _UNSET else None)
        now = getattr(new, f.name)
        if isinstance(before, list) and isinstance(now, tuple) or isinstance(now, list) and isinstance(before, tuple):
            before, now = list(before), list(now)
        if before != now:
            out.append(f"{flag_of(f)} {_show(before)} (run) vs {_show(now)}")
    return out


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return _fmt(v) if not isinstance(v, (list, tuple)) else " ".join(map(str, v))
