"""Strategy options come from the strategies' configs: every field is a flag of `solve` and
`eval`, its help and choices are the config's, a new field needs no CLI edit, and
`strategies --options` lists them all with their defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field, fields

import pytest
import typer
from rich.cells import cell_len
from typer.main import get_command
from typer.testing import CliRunner

import deliberate
import deliberate.search
from deliberate.cli import app
from deliberate.cli.options import SP, config_rows, derived_options, field_help, field_type, flag, with_strategy_options
from deliberate.errors import BadInput
from deliberate.rewards import REWARDS
from deliberate.search import STRATEGIES, get_strategy
from deliberate.search.greedy import Greedy, GreedyConfig

runner = CliRunner()
CONFIG_FIELDS = [(name, cls.Config, f) for name, cls in STRATEGIES.items() for f in fields(cls.Config)]


def squeeze(text: str) -> str:
    return "".join(text.split())


def named_choices(config: type, name: str) -> list[str] | None:
    """The values a config's own error names for a bad value of a text field (MCTSConfig:
    "final must be visits or value"), or None where it names no fixed set."""
    if field_type(config, config.__dataclass_fields__[name])[0] is not str:
        return None
    try:
        config(**{name: "nope"})
    except BadInput as e:
        if f"{name} must be " not in str(e):
            return None
        named = str(e).split(" must be ")[1].split(", got")[0].removeprefix("one of ").removeprefix("among ")
        return named.replace(" or ", ", ").split(", ")
    return None


@pytest.mark.parametrize("command", ["solve", "eval"])
def test_every_config_field_is_a_flag_in_the_strategy_panel(command):
    params = {p.name: p for p in get_command(app).commands[command].params}
    for strategy, config, f in CONFIG_FIELDS:
        kind, _ = field_type(config, f)
        p = params.get(f.name)
        assert p is not None, f"{strategy}'s {f.name} is not a flag of {command}"
        assert [*p.opts, *p.secondary_opts] == flag(f.name, kind).split("/")
        assert p.default is None and p.rich_help_panel == SP  # None: the strategy's own default
        assert strategy in p.help or p.help.startswith(("all:", "all but ")), p.help


def test_every_field_has_help_and_the_help_names_its_choices():
    for strategy, config, f in CONFIG_FIELDS:
        assert f.metadata.get("help"), f"{strategy}'s {f.name} has no help"
        for value in named_choices(config, f.name) or ():  # a new value in a config fails here
            assert getattr(config(**{f.name: value}), f.name) == value
            assert value in field_help(f), (strategy, f.name, value)
        if f.name == "reward":  # the registry's names, self-eval included
            assert all(name in field_help(f) for name in REWARDS)
    assert named_choices(STRATEGIES["mcts"].Config, "final") == ["visits", "value"]


def test_eval_help_lists_every_reward_and_choice():
    text = squeeze(runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "80"}).output.replace("│", ""))
    assert all(name in text for name in REWARDS), text
    for _, config, f in CONFIG_FIELDS:
        assert all(value in text for value in named_choices(config, f.name) or ())


def test_one_name_one_type():
    """A field two configs share is one flag, so it must have one type (temperature: float)."""
    options = derived_options()
    assert set(options) == {f.name for _, _, f in CONFIG_FIELDS}
    assert options["temperature"].kind is float and options["reflect"].kind is bool
    assert set(options["top_p"].takers) == {"self-consistency", "best-of-n"}


@dataclass(frozen=True)
class PatientConfig(GreedyConfig):
    patience: int = field(default=3, metadata={"help": "how long to wait"})


class Patient(Greedy):
    name = "patient"
    Config = PatientConfig


def test_a_field_added_to_a_config_is_a_flag_with_no_cli_edit(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "patient", Patient)
    seen = {}
    toy = typer.Typer()

    @toy.command()
    @with_strategy_options
    def go(strategy: str = "patient", **strategy_options) -> None:
        seen["config"] = get_strategy(strategy, **strategy_options).config

    r = runner.invoke(toy, ["--patience", "5", "--shots", "0"])
    assert r.exit_code == 0, r.output
    assert seen["config"] == PatientConfig(patience=5, shots=0)
    help_text = squeeze(runner.invoke(toy, ["--help"], env={"COLUMNS": "200"}).output)
    assert "--patience" in help_text and "patient:howlongtowait." in help_text


def record_strategies(monkeypatch) -> list:
    made = []

    def recording(name, **options):
        made.append(get_strategy(name, **options))
        return made[-1]

    for module in (deliberate, deliberate.search):  # where solve and eval import it from, at call time
        monkeypatch.setattr(module, "get_strategy", recording)
    return made


def test_top_p_and_aggregate_reach_best_of_n_from_eval(tmp_path, monkeypatch):
    made = record_strategies(monkeypatch)
    r = runner.invoke(app, ["eval", "--task", "lab-en", "--model", "lab", "--strategy", "best-of-n", "--n", "2",
                            "--top-p", "0.9", "--aggregate", "min", "--limit", "1", "--threads", "1",
                            "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    assert (made[0].config.top_p, made[0].config.aggregate, made[0].config.n) == (0.9, "min", 2)
    options = json.loads((tmp_path / "manifest.json").read_text())["strategy"]["options"]
    assert (options["top_p"], options["aggregate"]) == (0.9, "min")  # and into the run's manifest


def test_top_p_and_aggregate_reach_best_of_n_from_solve(monkeypatch):
    made = record_strategies(monkeypatch)
    r = runner.invoke(app, ["solve", "Tom has 3 apples. Tom buys 4 more. How many apples does Tom have now?",
                            "--model", "lab", "--strategy", "best-of-n", "--n", "2", "--top-p", "0.9",
                            "--aggregate", "min", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert (made[0].config.top_p, made[0].config.aggregate) == (0.9, "min") and "answer: " in r.stdout


def test_strategies_options_lists_every_field_with_its_default():
    r = runner.invoke(app, ["strategies", "--options"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "…" not in r.output and all(cell_len(line) <= 80 for line in r.output.splitlines())
    lines = r.output.splitlines()
    starts = {name: next(i for i, line in enumerate(lines) if line.strip() == name)
              for name in STRATEGIES}  # each strategy's table, under its name
    ends = sorted(starts.values())[1:] + [len(lines)]
    for name, cls in STRATEGIES.items():
        block = lines[starts[name]:next(e for e in ends if e > starts[name])]
        cells = [line.split("│")[1:4] for line in block if line.startswith("│")]  # option+type, default, help
        rows = config_rows(cls.Config)
        assert [f.name for f in fields(cls.Config)] == [row[0].removeprefix("--").removeprefix("[no-]")
                                                        .replace("-", "_") for row in rows]
        for column, got in ((0, "".join(c[0] for c in cells)), (1, "".join(c[1] for c in cells))):
            want = "".join(row[0] + row[1] if column == 0 else row[2] for row in rows)
            assert squeeze(got) == squeeze(want), (name, column)  # every field, in order, with its default
    plain = runner.invoke(app, ["strategies"]).output  # plain `strategies`: the one table, as before
    assert "samples per problem" not in plain and "n=16" in plain


def test_python_m_deliberate_help():
    r = subprocess.run([sys.executable, "-m", "deliberate", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "solve" in r.stdout and "strategies" in r.stdout
