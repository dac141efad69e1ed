"""Writing a recipe back as TOML (the run directory's `recipe.toml`).

The standard library reads TOML but does not write it. The recipe schema is nearly flat (tables of
strings, numbers, booleans and lists of integers, plus `data.augment` as a list of inline tables
and `data.sources` as `[data.sources.<head>]` sub-tables), so a small writer covers it exactly;
the output reads back with `load_recipe` to an equal `Recipe`.

Example:

>>> from toolkit.recipe import Recipe
>>> from toolkit.recipe.dump import dumps_recipe
>>> print(dumps_recipe(Recipe(name="demo")).splitlines()[0])
name = "demo"
"""

import dataclasses
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

from toolkit.recipe.schema import TABLES, AugmentStep, Recipe, SourceConfig

__all__ = ["dumps_recipe", "format_value", "write_recipe", "write_text_atomic"]


def format_value(value: Any) -> str:
    """Formats one schema value (bool, int, float, str, tuple, `AugmentStep`) as a TOML value.

    Args:
        value: The value.

    Returns:
        Its TOML text.

    Example:

    >>> format_value(3e-3), format_value((64, 64)), format_value("mlp")
    ('0.003', '[64, 64]', '"mlp"')
    >>> format_value(AugmentStep("random_shift", (("max_shift", 4),)))
    '{name = "random_shift", max_shift = 4}'
    """
    if isinstance(value, AugmentStep):
        pairs = (("name", value.name),) + value.arguments
        return "{" + ", ".join(f"{key} = {format_value(item)}" for key, item in pairs) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)  # shortest round-tripping form, e.g. 0.003 or 1e-05
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(value, str):
        # JSON string escapes (\" \\ \n \uXXXX) are all valid TOML basic-string escapes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    raise TypeError(f"Cannot write {value!r} ({type(value).__name__}) as a TOML value.")


def dumps_recipe(recipe: Recipe, header: str = "") -> str:
    """Returns the recipe as TOML text, every key written out (defaults included).

    Args:
        recipe: The recipe to write.
        header: Comment text put first, one `# ` line per line. Defaults to `""`.

    Returns:
        The TOML document.

    Example:

    >>> text = dumps_recipe(Recipe(name="demo"))
    >>> "[train]" in text and "steps = 3000" in text
    True
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines.append(f"name = {format_value(recipe.name)}")
    for table in TABLES:
        config = getattr(recipe, table)
        lines += ["", f"[{table}]"]
        sub_tables = []
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if field.type == tuple[SourceConfig, ...]:
                # TOML: a table's sub-tables come after all of its own keys.
                sub_tables += [_source_table(table, field.name, item) for item in value]
            else:
                lines.append(f"{field.name} = {format_value(value)}")
        for sub_table in sub_tables:
            lines += ["", *sub_table]
    return "\n".join(lines) + "\n"


def _source_table(table: str, key: str, source: SourceConfig) -> list:
    return [f"[{table}.{key}.{source.head}]", f"name = {format_value(source.name)}",
            f"weight = {format_value(source.weight)}"]


def write_recipe(recipe: Recipe, path: str | os.PathLike, header: str = "") -> Path:
    """Writes the recipe to `path` atomically (temporary file, then rename).

    Args:
        recipe: The recipe to write.
        path: Destination file.
        header: Comment text put first. Defaults to `""`.

    Returns:
        The path written.

    Example:

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_recipe(Recipe(name="demo"), folder / "recipe.toml").name
    'recipe.toml'
    """
    return write_text_atomic(path, dumps_recipe(recipe, header))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` through a temporary file in the same folder and a rename.

    A reader never sees a half-written file: it sees the old file or the new one.

    Args:
        path: Destination file; its folder is created if needed.
        text: The content, written as UTF-8.

    Returns:
        The path written.

    Example:

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> write_text_atomic(target, "hello").read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique sibling name ("x": never overwrite) keeps the rename atomic (same file system)
    # and, unlike mkstemp, the file gets the umask's usual permissions.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
