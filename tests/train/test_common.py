"""Shared trainer plumbing (`deliberate.train.common`)."""

from __future__ import annotations

from deliberate.train.common import Milestones


def test_milestones_print_one_line_per_tenth_and_nothing_when_a_bar_shows(capsys):
    lines = Milestones("lab answers plain rows", 250, enabled=True)
    for done in range(0, 251, 10):
        lines.update(done, f"{done // 2} right")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 10 and err[0] == "lab answers plain rows: 30/250  15 right"  # the first update past 1/10
    assert err[-1] == "lab answers plain rows: 250/250  125 right"
    quiet = Milestones("x", 5, enabled=False)
    quiet.update(5)
    resumed = Milestones("y", 100, enabled=True, done=50)  # a run resumed at step 50 counts on from there
    resumed.update(55)
    resumed.update(60)
    assert capsys.readouterr().err.splitlines() == ["y: 60/100"]
