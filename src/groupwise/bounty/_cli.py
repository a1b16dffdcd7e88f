"""Plain functions behind ``groupwise bounty ...`` commands.

Each parses nothing itself beyond its arguments, calls the library and prints with rich;
a user mistake is raised as a :class:`GroupwiseError` for the CLI to print with its fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from groupwise._io import split_names

__all__ = ["export_cmd", "hunt_cmd", "init_cmd", "predict_cmd", "replay_cmd", "status_cmd", "submit_cmd", "feature_usage"]


def _console(console: Any = None) -> Any:
    if console is not None:
        return console
    from rich.console import Console

    return Console(width=120)


def init_cmd(
    directory: Path,
    *,
    data: Path | None = None,
    example: str | None = None,
    target: str | None = None,
    features: Sequence[str] | str | None = None,
    task: str = "classification",
    loss: str | None = None,
    epsilon: float = 0.01,
    base_model: str = "train:gbm",
    seed: int = 0,
    test_size: float = 0.2,
    holdout_size: float = 0.4,
    max_queries: int = 10_000,
    min_group_size: int = 30,
    console: Any = None,
) -> Any:
    """``groupwise bounty init DIR``: create a program from data or ``--example adult``."""
    from groupwise.bounty._program import create_program

    console = _console(console)
    program, notes = create_program(
        directory, data=data, example=example, target=target, features=features, task=task, loss=loss, epsilon=epsilon,
        base_model=base_model, seed=seed, test_size=test_size, holdout_size=holdout_size,
        max_queries=max_queries, min_group_size=min_group_size,
    )
    for note in notes:
        console.print(f"[yellow]warning:[/] {note}", highlight=False)
    sizes = program.config["sizes"]
    console.print(
        f"Created bounty program in {directory}: {sizes['train']:,} public training rows, {sizes['test']:,} public test rows, "
        f"{sizes['holdout']:,} private holdout rows; loss {program.loss.spec}, eps={program.state.epsilon:g} "
        f"(at most {program.state.max_acceptances} acceptances, {program.state.max_queries:,} queries). "
        f"Base model test loss {program.test_loss(0):.4f}.",
        highlight=False,
    )
    if example == "adult":
        console.print("[dim]Data: UCI Adult (Becker and Kohavi 1996), CC BY 4.0.[/]")
    return program


def _print_result(console: Any, result: Any) -> None:
    if result.accepted:
        console.print(
            f"[green]accepted[/] {result.id} ({result.team}): version {result.version_before} -> {result.version_after}"
            f"{f' with {result.repairs} repair(s)' if result.repairs else ''}; public test loss "
            f"{result.test_loss_before:.4f} -> {result.test_loss_after:.4f}, on the group {result.group_test_loss_before:.4f} -> "
            f"{result.group_test_loss_after:.4f}",
            highlight=False,
        )
    else:
        console.print(f"[red]rejected[/] {result.id} ({result.team}): {result.reason}", highlight=False)


def submit_cmd(
    directory: Path, *, model: Path, team: str, group: str | None = None, group_model: Path | None = None, console: Any = None
) -> Any:
    """``groupwise bounty submit DIR --group EXPR|g.onnx --model h.onnx --team NAME``.

    ``--group`` is read as a file when it names an existing ``.onnx`` or ``.skops`` file.
    """
    from groupwise.bounty._program import Program

    console = _console(console)
    if group is not None and group_model is None and Path(group).suffix in (".onnx", ".skops") and Path(group).is_file():
        group, group_model = None, Path(group)
    result = Program.load(directory).submit(team=team, model=model, group=group, group_model=group_model)
    _print_result(console, result)
    return result


def hunt_cmd(
    directory: Path, *, strategy: str = "demographic", budget: int = 10, team: str | None = None,
    features: Sequence[str] | str | None = None, seed: int = 0, model: str = "gbm", console: Any = None,
) -> list[Any]:
    """``groupwise bounty hunt DIR --strategy demographic|csc|tree --budget N``."""
    from groupwise.bounty._hunters import hunt
    from groupwise.bounty._program import Program

    console = _console(console)
    program = Program.load(directory)
    results = hunt(program, strategy=strategy, budget=budget, team=team, features=split_names(features) or None, seed=seed, model=model)
    for result in results:
        _print_result(console, result)
    if not results:
        console.print("The hunter found no candidate whose estimated improvement (on held-out public training rows) clears the bar to submit.")
    console.print(f"{sum(r.accepted for r in results)} of {len(results)} submissions accepted; holdout: {program.state.status}", highlight=False)
    return results


def feature_usage(program: Any, *, accepted_only: bool = False) -> Any:
    """Teams by features (kept for callers of this module): :meth:`Program.feature_usage`."""
    return program.feature_usage(accepted_only=accepted_only)


def status_cmd(directory: Path, *, plot: Path | None = None, console: Any = None) -> dict[str, Any]:
    """``groupwise bounty status DIR [--plot groups.png]``: budget, trajectory, per-group
    errors and each group's error across versions (public test split)."""
    from rich.table import Table

    from groupwise.bounty._program import Program

    console = _console(console)
    program = Program.load(directory)
    status = program.status()
    console.print(
        f"Program {status['name']}: version {status['version']}, {status['submissions']} submissions, "
        f"{status['accepted_submissions']} accepted; {status['acceptances']} of {status['max_acceptances']} acceptances "
        f"(2/eps) and {status['queries']:,} of {status['max_queries']:,} queries used; holdout: {status['holdout']}",
        highlight=False,
    )
    table = Table(title="Error trajectory (public test split)")
    for column in ("version", "kind", "submission", "team", "test loss"):
        table.add_column(column)
    for row in program.trajectory().itertuples():
        table.add_row(str(row.version), row.kind, row.submission, row.team, f"{row.test_loss:.4f}")
    console.print(table)
    groups = program.group_errors()
    if len(groups):
        table = Table(title="Groups of the list (public test split)")
        for column in groups.columns:
            table.add_column(str(column))
        for row in groups.itertuples(index=False):
            table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
        console.print(table)
        paths = program.group_trajectories()
        table = Table(title="Each group's error across versions (public test split)")
        names = [c for c in paths.columns if c not in ("version", "kind", "test_loss")]
        for column in ("version", "kind", "overall", *names):
            table.add_column(str(column))
        for row in paths.itertuples(index=False):
            values = [getattr(row, "test_loss"), *row[3:]]
            table.add_row(str(row.version), str(row.kind), *["-" if v != v else f"{v:.4f}" for v in values])
        console.print(table)
    if plot is not None:
        console.print(f"Wrote {program.plot_group_trajectories(plot)}", highlight=False)
    return status


def export_cmd(directory: Path, out: Path, *, version: int | None = None, console: Any = None) -> Path:
    """``groupwise bounty export DIR OUT [--version V]``: write a runnable bundle."""
    from groupwise.bounty._program import Program

    console = _console(console)
    path = Program.load(directory).export(out, version=version)
    console.print(f"Wrote bundle {path}", highlight=False)
    return path


def predict_cmd(bundle: Path, data: Path, *, out: Path | None = None, console: Any = None) -> Any:
    """``groupwise bounty predict BUNDLE DATA [--out preds.csv]``: run a bundle on a table."""
    from groupwise.bounty._pdl import load_bundle, predictions_frame

    console = _console(console)
    frame = predictions_frame(load_bundle(bundle), data)
    if out is not None:
        frame.to_csv(out, index=False)
        console.print(f"Wrote {len(frame):,} predictions to {out}", highlight=False)
    else:
        console.print(frame.to_csv(index=False), end="", highlight=False)
    return frame


def replay_cmd(directory: Path, *, console: Any = None) -> list[str]:
    """``groupwise bounty replay DIR``: re-run the log and report any disagreement."""
    from groupwise.bounty._program import Program

    console = _console(console)
    problems = Program.load(directory).replay()
    if problems:
        for problem in problems:
            console.print(f"[red]mismatch[/] {problem}", highlight=False)
    else:
        console.print("The log reproduces the program's state.")
    return problems
