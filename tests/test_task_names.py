"""One task name per behaviour: every Prefect task in tasks/ has a unique name, its function's name in dashes."""

from __future__ import annotations

import importlib
import pkgutil

from prefect import Task

import tasks


def all_tasks() -> list[tuple[str, Task]]:
    """(module, task) for every task object defined in a tasks/ module."""
    found = []
    for info in pkgutil.iter_modules(tasks.__path__, "tasks."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Task) and value.fn.__module__ == info.name:
                found.append((info.name, value))
    return found


def test_every_task_name_is_unique_and_says_its_function() -> None:
    named = all_tasks()
    assert len(named) > 30
    names = [t.name for _, t in named]
    assert sorted(n for n in names if names.count(n) > 1) == []
    assert [(m, t.name) for m, t in named if t.name != t.fn.__name__.replace("_", "-")] == []
