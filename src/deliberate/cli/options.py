"""Strategy options on the command line, derived from the strategies' config dataclasses.

The flags used to be declared by hand next to each command, with a hand-kept list of their
names, and drifted from the configs: `top_p`, `aggregate`, `discriminate`, `wait` and others
could be set from Python but not from the shell. Here the union of every `Config`'s fields
(`deliberate.search.STRATEGIES`) becomes the flags: a field's help is its
`metadata["help"]`, prefixed by the strategies that take it, and every flag defaults to None,
meaning "the strategy's own default" (`get_strategy` drops None). A field added to a config is
a flag of `solve` and `eval` with no edit here; passing a flag to a strategy that does not take
it stays `get_strategy`'s one-line error.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import Field, dataclass, fields
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

# Options that set the strategy get a help panel of their own: grouped, and in a table apart from
# the run's options rich has room for the longest flag (--rollout-temperature) at 80 columns.
SP = "Strategy options (each names the strategies that take it)"
SCALARS = (bool, int, float, str)  # what a flag can carry; a config field of another type is an error here

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def _hints(config: type) -> dict[str, Any]:
    return typing.get_type_hints(config)


def field_type(config: type, f: Field) -> tuple[type, bool]:
    """A config field's scalar type and whether it may be None, resolved from its annotation (a
    string in modules with `from __future__ import annotations`, hence `get_type_hints`)."""
    hint = _hints(config)[f.name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    scalar = [a for a in args if a is not type(None)]
    if len(scalar) != 1 or scalar[0] not in SCALARS:
        raise TypeError(f"{config.__name__}.{f.name}: a strategy option must be one of bool, int, float, str "
                        f"(or that | None) to be set from the command line, got {hint}.")
    return scalar[0], len(scalar) < len(args)


def flag(name: str, kind: type = str) -> str:
    """The flag of a field: max_tokens -> --max-tokens; a bool one can be switched off too."""
    dashed = "--" + name.replace("_", "-")
    return f"{dashed}/--no-{dashed[2:]}" if kind is bool else dashed


def field_help(f: Field) -> str:
    return f.metadata.get("help") or f.name.replace("_", " ")


@dataclass(frozen=True)
class StrategyOption:
    """One flag: a field name and, per strategy that takes it, that strategy's field."""

    name: str
    kind: type
    takers: dict[str, Field]

    def help(self, every: list[str]) -> str:
        """The field's help, after the strategies that take it; where they describe it differently
        (temperature: of samples, of expansions) each group says its own."""
        groups: dict[str, list[str]] = {}
        for strategy, f in self.takers.items():
            groups.setdefault(field_help(f), []).append(strategy)
        if len(groups) == 1:
            [(text, names)] = groups.items()
            return f"{who(names, every)}: {text}."
        return "; ".join(f"{', '.join(names)}: {text}" for text, names in groups.items()) + "."

    def parameter(self, every: list[str]) -> inspect.Parameter:
        """A keyword-only parameter typer reads as the flag, in the strategy options' panel."""
        option = typer.Option(flag(self.name, self.kind), help=escape(self.help(every)), rich_help_panel=SP)
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=Annotated[self.kind | None, option])


def who(names: list[str], every: list[str]) -> str:
    """The strategies that take an option, short where nearly all do ("all but greedy")."""
    rest = [s for s in every if s not in names]
    if not rest:
        return "all"
    if len(rest) <= 2 and len(names) > 2 * len(rest):
        return "all but " + ", ".join(rest)
    return ", ".join(names)


def derived_options(strategies: dict[str, type] | None = None) -> dict[str, StrategyOption]:
    """The union of the strategies' config fields, in registry then field order. The registry
    is read at each call, so a strategy registered later (a test's, a plugin's) counts."""
    if strategies is None:
        from deliberate.search import STRATEGIES as strategies
    found: dict[str, StrategyOption] = {}
    for strategy, cls in strategies.items():
        for f in fields(cls.Config):
            kind, _ = field_type(cls.Config, f)
            seen = found.setdefault(f.name, StrategyOption(f.name, kind, {}))
            if seen.kind is not kind:
                first = next(iter(seen.takers))
                raise TypeError(f"strategy option {f.name!r} is {seen.kind.__name__} in {first} but "
                                f"{kind.__name__} in {strategy}: one flag cannot carry both.")
            seen.takers[strategy] = f
    return found


def with_strategy_options(fn: F) -> F:
    """Give a command every strategy option as a flag: the `**strategy_options` parameter of
    `fn` becomes, in the signature typer reads, one keyword-only parameter per option, and typer's
    call then passes them all back into that dict (None where not given)."""
    from deliberate.search import STRATEGIES

    sig = inspect.signature(fn, eval_str=True)  # typer reads the types, not their names
    params = list(sig.parameters.values())
    if not params or params[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        raise TypeError(f"{fn.__name__} needs a **strategy_options parameter to receive the strategy options.")
    own = {p.name for p in params[:-1]}
    every = list(STRATEGIES)
    derived = [o.parameter(every) for o in derived_options(STRATEGIES).values()]
    clash = [p.name for p in derived if p.name in own]
    if clash:
        raise TypeError(f"{fn.__name__}: its own parameter {clash[0]!r} is also a strategy option.")
    fn.__signature__ = sig.replace(parameters=[*params[:-1], *derived])  # type: ignore[attr-defined]
    return fn


def config_rows(config: type) -> list[tuple[str, str, str, str]]:
    """A config's options for `deliberate strategies --options`: flag, type, default, help."""
    rows = []
    for f in fields(config):
        kind, optional = field_type(config, f)
        dashed = "--" + f.name.replace("_", "-")
        shown = f"--[no-]{dashed[2:]}" if kind is bool else dashed  # the two flags in one short cell
        rows.append((shown, kind.__name__ + (" | None" if optional else ""), str(f.default), field_help(f)))
    return rows


def with_config_options(config: type) -> Callable[[F], F]:
    """Give a command one flag per field of a config dataclass (a trainer's): the help is the
    field's `metadata["help"]`, the default the field's, and typer passes the values back in the
    command's `**options`, ready for `config(**options)`. A field added is a flag, no edit here."""

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn, eval_str=True)
        params = list(sig.parameters.values())
        if not params or params[-1].kind is not inspect.Parameter.VAR_KEYWORD:
            raise TypeError(f"{fn.__name__} needs a **options parameter to receive {config.__name__}'s fields.")
        derived = []
        for f in fields(config):
            kind, optional = field_type(config, f)
            # a switch that defaults to off needs no --no- form (and its long pair would squeeze the help)
            name = "--" + f.name.replace("_", "-") if kind is bool and f.default is False else flag(f.name, kind)
            option = typer.Option(name, help=escape(field_help(f)))
            derived.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                             annotation=Annotated[kind | None if optional else kind, option]))
        fn.__signature__ = sig.replace(parameters=[*params[:-1], *derived])  # type: ignore[attr-defined]
        return fn

    return wrap
