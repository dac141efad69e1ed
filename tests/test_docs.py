"""The documentation stays true: every code block of README.md and docs/ is checked.

- ```python blocks run. The blocks of one page run in order in one shared namespace (a later
  block may use the names of an earlier one), in a temporary working directory (so `runs/` goes
  there) with `TOOLKIT_CACHE_DIR` in a temporary directory. A failure names the block's
  `file:line`, and the traceback shows the page's own line numbers.
- ```toml blocks parse with `tomllib`; a block made only of recipe tables loads as a recipe.
- ```bash lines that run `toolkit ...` are not executed: their arguments must parse with the
  real CLI parser, and the recipe and `--set` overrides of `toolkit train` must load.
- Relative links point at files that exist, and `#anchors` into Markdown pages at headings.
- A block may be skipped with `<!-- not-run: reason -->` on the line before it: at most twice in
  all, and never without a reason.
"""

import dataclasses
import pathlib
import re
import shlex
import traceback
import warnings

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("**/*.md"))
README_MAX_BYTES = 15_000
MAX_NOT_RUN = 2
# Recipe files are made of these top-level tables (plus an optional `name`).
RECIPE_TABLES = {"data", "model", "optimizer", "train", "callbacks", "tune"}

_FENCE = re.compile(r"^```(\S*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not-run\b:?\s*(.*?)\s*-->\s*$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    page: pathlib.Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None  # the reason given in `<!-- not-run: reason -->`, or None

    @property
    def where(self) -> str:
        return f"{_relative(self.page)}:{self.line}"


def _relative(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _blocks(page: pathlib.Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and lines[index].rstrip() != "```":
            index += 1
        if index == len(lines):
            raise AssertionError(f"{_relative(page)}:{start + 1}: code block is never closed.")
        marker = _NOT_RUN.match(lines[start - 1].strip()) if start > 0 else None
        blocks.append(Block(page, start + 1, fence.group(1).lower(),
                            "\n".join(lines[start + 1:index]) + "\n",
                            marker.group(1) if marker else None))
        index += 1
    return blocks


def _all_blocks(language: str) -> list[Block]:
    return [block for page in PAGES for block in _blocks(page) if block.language == language]


def _outside_code(page: pathlib.Path) -> list[tuple[int, str]]:
    """The (line number, text) of every line of `page` outside fenced code blocks."""
    lines, inside = [], False
    for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if text.startswith("```"):
            inside = not inside
        elif not inside:
            lines.append((number, text))
    return lines


PYTHON_PAGES = [page for page in PAGES if any(b.language == "python" for b in _blocks(page))]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    # One cache for the session: MNIST-1D is generated once, not once per page.
    return tmp_path_factory.mktemp("toolkit_cache")


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_relative)
def test_python_blocks_run(page, tmp_path, monkeypatch, cache_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(cache_dir))
    namespace = {"__name__": "__docs__"}
    for block in _blocks(page):
        if block.language != "python" or block.not_run is not None:
            continue
        # Pad with blank lines so that tracebacks show the page's own line numbers.
        source = "\n" * block.line + block.code
        error = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(source, str(page), "exec"), namespace)
        except Exception as caught:  # noqa: BLE001 - any failure of an example fails the page
            error = caught
        if error is not None:
            # Drop this function's frame: the traceback starts in the page.
            lines = traceback.format_exception(type(error), error, error.__traceback__.tb_next)
            pytest.fail(f"The Python block at {block.where} failed:\n{''.join(lines)}",
                        pytrace=False)


@pytest.mark.parametrize("block", _all_blocks("toml"), ids=lambda block: block.where)
def test_toml_blocks_parse(block, tmp_path):
    try:
        table = tomllib.loads(block.code)
    except tomllib.TOMLDecodeError as error:
        pytest.fail(f"The TOML block at {block.where} does not parse: {error}", pytrace=False)
    if table and set(table) <= RECIPE_TABLES | {"name"}:
        from toolkit.recipe import load_recipe

        path = tmp_path / "recipe.toml"
        path.write_text(block.code, encoding="utf-8")
        load_recipe(str(path))


def _toolkit_commands(block: Block) -> list[tuple[int, list[str]]]:
    """The (page line, arguments) of every `toolkit ...` command in a bash block."""
    commands = []
    for offset, line in enumerate(block.code.splitlines(), start=1):
        command = []
        for word in shlex.split(line, comments=True) + [";"]:
            if word in ("&&", "||", ";", "|"):
                if command[:1] == ["toolkit"]:
                    commands.append((block.line + offset, command[1:]))
                command = []
            else:
                command.append(word)
    return commands


BASH_COMMANDS = [
    pytest.param(argv, f"{_relative(block.page)}:{line}",
                 id=f"{_relative(block.page)}:{line}:{' '.join(argv[:2])}")
    for block in _all_blocks("bash")
    for line, argv in _toolkit_commands(block)
]


@pytest.mark.parametrize("argv, where", BASH_COMMANDS)
def test_toolkit_commands_name_real_recipes(argv, where, monkeypatch, capsys):
    from toolkit.cli import _parser
    from toolkit.errors import ToolkitError
    from toolkit.recipe import load_recipe

    monkeypatch.chdir(ROOT)  # recipe paths in the docs are relative to the repository root
    command = "toolkit " + shlex.join(argv)
    argv = [word for word in argv if word not in ("--help", "-h")]
    try:
        args = _parser().parse_args(argv)
    except SystemExit:
        args = None
    if args is None:
        pytest.fail(f"{where}: `{command}` is not a valid command: "
                    f"{capsys.readouterr().err.strip()}", pytrace=False)
    if args.command == "train":
        try:
            load_recipe(args.recipe, overrides=args.overrides)
        except ToolkitError as error:
            problem = error
        else:
            return
        pytest.fail(f"{where}: `{command}` names a recipe that does not load: {problem}",
                    pytrace=False)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: pathlib.Path) -> set[str]:
    anchors, seen = set(), {}
    for _, text in _outside_code(page):
        heading = _HEADING.match(text)
        if heading:
            slug = _slug(heading.group(1))
            anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=_relative)
def test_relative_links_exist(page):
    broken = []
    for number, text in _outside_code(page):
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{_relative(page)}:{number}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{_relative(page)}:{number}: {target} (no such heading)")
    assert not broken, "Broken links:\n" + "\n".join(broken)


def test_not_run_markers_are_rare_and_explained():
    markers = [block for page in PAGES for block in _blocks(page) if block.not_run is not None]
    assert len(markers) <= MAX_NOT_RUN, (
        f"At most {MAX_NOT_RUN} blocks may be marked `<!-- not-run -->`; found "
        f"{[block.where for block in markers]}. Shrink the example so that it runs instead."
    )
    unexplained = [block.where for block in markers if not block.not_run]
    assert not unexplained, f"Give a reason: `<!-- not-run: why -->` at {unexplained}."


def test_readme_is_a_landing_page():
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_MAX_BYTES, (
        f"README.md is {size} bytes; keep it under {README_MAX_BYTES} and move detail to docs/."
    )


def test_recipe_keys_are_documented():
    from toolkit.recipe import iter_keys

    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    missing = [info.key for info in iter_keys() if f"| `{info.key}` |" not in text]
    assert not missing, (
        f"docs/recipes.md has no row for the recipe keys {missing}. Add a row to its key table "
        "(key, default, help, as `toolkit train --help` prints them)."
    )
