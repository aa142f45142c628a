"""Build the sdist and the wheel into dist/ and check what a user would install.

Usage: python scripts/check_dist.py   (`make dist`; needs build, twine, pyroma and readme_renderer[md])

1. ``python -m build`` builds the sdist, then the wheel from that sdist (what PyPI users get);
   ``python -m build --wheel`` builds a second wheel straight from the source tree.
2. ``twine check --strict`` passes for the sdist and the wheel (metadata, README rendering). twine
   renders Markdown only with readme_renderer's ``md`` extra installed, and passes without it: so
   the README is also rendered here, with that renderer, as PyPI renders it, and every link and
   image in it must be absolute (a relative one is broken on the package index).
3. pyroma rates the sdist's packaging 10/10 (``--min 10``).
4. The wheel holds every module of the package and ``py.typed``, its metadata declares this
   version, Python >= 3.11, POSIX (the token cache's file locks), only the users' extras
   (:data:`USER_EXTRAS`; the developers' tools are dependency groups) and both entry points
   (Airflow's provider info, the sandbox's pytest plugin), and nothing of tests/, benchmarks/,
   example_dags/ or scripts/.
5. The sdist holds the package, README, CHANGELOG, LICENSE and pyproject.toml, and no tests.
6. Both wheels hold the same files with the same content (sha256 of each file but RECORD), and
   each wheel's RECORD agrees with its files.

Prints one line per check; exits 1 with the failures listed if any check fails.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from email.parser import Parser
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist"
PACKAGE = "airflow_provider_jobmojito"
EXCLUDED_DIRS = ("tests", "benchmarks", "example_dags", "scripts")
#: The extras users install the package with: parquet (pyarrow, for the results export to Parquet).
USER_EXTRAS = frozenset({"parquet"})


def version() -> str:
    source = (REPO / PACKAGE / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', source, re.MULTILINE)
    assert match, "no __version__ in the package's __init__.py"
    return match.group(1)


def build(args: list[str], outdir: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(outdir), *args, str(REPO)], check=True)


def package_files() -> set[str]:
    """The package's files in the source tree, as the wheel names them."""
    root = REPO / PACKAGE
    return {
        path.relative_to(REPO).as_posix()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".typed"}
    }


def _digest(data: bytes) -> str:
    """A file's hash as a wheel's RECORD writes it."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def contents(wheel: Path, problems: list[str]) -> dict[str, str]:
    """The wheel's files as {path: sha256}, less RECORD (it lists the others, and cannot hash itself).

    The hashes are taken from the files themselves, and RECORD must agree with them.
    """
    with zipfile.ZipFile(wheel) as archive:
        (record,) = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        files = {name: _digest(archive.read(name)) for name in archive.namelist() if name != record}
        rows = csv.reader(io.StringIO(archive.read(record).decode()))
        listed = {path: digest for path, digest, _size in rows if path != record}
    if listed != files:
        problems.append(f"{wheel.name}: RECORD does not match the files it lists")
    return files


def check_wheel(wheel: Path, problems: list[str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"{PACKAGE}-{version()}.dist-info"
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    missing = package_files() - names
    if missing:
        problems.append(f"wheel lacks {sorted(missing)}")
    stray = sorted(n for n in names if n.split("/")[0] not in {PACKAGE, dist_info})
    if stray:
        problems.append(f"wheel holds files outside the package: {stray}")
    excluded = sorted(n for n in names for d in EXCLUDED_DIRS if f"/{d}/" in f"/{n}")
    if excluded:
        problems.append(f"wheel holds {excluded}")
    if f"{PACKAGE}/py.typed" not in names:
        problems.append("wheel lacks py.typed")
    if metadata["Version"] != version():
        problems.append(f"wheel's Version is {metadata['Version']}, __version__ is {version()}")
    if metadata["Requires-Python"] != ">=3.11":
        problems.append(f"wheel's Requires-Python is {metadata['Requires-Python']}")
    if f"{dist_info}/licenses/LICENSE" not in names:
        problems.append("wheel lacks the LICENSE")
    if "Operating System :: POSIX" not in (metadata.get_all("Classifier") or []):
        problems.append("wheel's classifiers lack 'Operating System :: POSIX' (the token cache needs fcntl)")
    if extras := sorted(set(metadata.get_all("Provides-Extra") or []) - USER_EXTRAS):
        problems.append(f"wheel provides extras {extras}: developers' tools belong in [dependency-groups]")
    for entry_point in (
        f"provider_info = {PACKAGE}:get_provider_info",
        f"jobmojito_sandbox = {PACKAGE}.sandbox.pytest_plugin",
    ):
        if entry_point not in entry_points:
            problems.append(f"wheel's entry points lack {entry_point!r}")


def check_sdist(sdist: Path, problems: list[str]) -> None:
    with tarfile.open(sdist) as archive:
        root = f"{PACKAGE}-{version()}"
        names = {name.removeprefix(f"{root}/") for name in archive.getnames()}
    expected = {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "PKG-INFO"} | package_files()
    missing = expected - names
    if missing:
        problems.append(f"sdist lacks {sorted(missing)}")
    excluded = sorted(n for n in names if n.split("/")[0] in EXCLUDED_DIRS)
    if excluded:
        problems.append(f"sdist holds {excluded}")


class _Links(HTMLParser):
    """The targets of a rendered page's links and images."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "img": "src"}.get(tag)
        self.targets.extend(value for name, value in attrs if name == wanted and value is not None)


def check_readme(sdist: Path, problems: list[str]) -> None:
    """Render the README from the sdist's metadata as PyPI does (GitHub-flavoured Markdown) and
    check that it renders and that its links and images are absolute."""
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(f"{PACKAGE}-{version()}/PKG-INFO")
        assert member is not None
        metadata = Parser().parsestr(member.read().decode())
    if metadata["Description-Content-Type"] != "text/markdown":
        problems.append(f"README's content type is {metadata['Description-Content-Type']}, not text/markdown")
        return
    with warnings.catch_warnings():
        # Without its md extra, readme_renderer only warns, and twine check passes unrendered.
        warnings.simplefilter("error")
        from readme_renderer.markdown import render

        html = render(metadata.get_payload())
    if not html:
        problems.append("the README does not render as Markdown")
        return
    links = _Links()
    links.feed(html)
    relative = [t for t in links.targets if not t.startswith(("https://", "http://", "mailto:", "#"))]
    if relative:
        problems.append(f"the README links relative paths, broken on the package index: {relative}")


def check_rating(sdist: Path, problems: list[str]) -> None:
    """pyroma's rating of the packaging (metadata, classifiers, README): 10/10 or a failure."""
    pyroma = [sys.executable, "-m", "pyroma", "--min", "10", str(sdist)]
    result = subprocess.run(pyroma, capture_output=True, text=True, check=False)
    rating = next((line for line in result.stdout.splitlines() if line.startswith("Final rating")), "")
    print(f"check_dist: pyroma: {rating or 'no rating'}")
    if result.returncode:
        print(result.stdout[-3000:] + result.stderr[-2000:])
        problems.append(f"pyroma rates the packaging below 10/10: {rating or 'no rating'}")


def clean_tree() -> None:
    """setuptools builds in build/ and *.egg-info/ of the tree: stale files there would reach a wheel."""
    shutil.rmtree(REPO / "build", ignore_errors=True)
    shutil.rmtree(REPO / f"{PACKAGE}.egg-info", ignore_errors=True)


def main() -> int:
    shutil.rmtree(DIST, ignore_errors=True)
    clean_tree()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="jobmojito-dist-") as tmp:
        build([], DIST)  # the sdist, then a wheel built from it
        build(["--wheel"], Path(tmp))  # a wheel built from the source tree
        clean_tree()
        (sdist,) = DIST.glob("*.tar.gz")
        (wheel,) = DIST.glob("*.whl")
        (tree_wheel,) = Path(tmp).glob("*.whl")
        twine = [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)]
        if subprocess.run(twine, check=False).returncode:
            problems.append("twine check --strict failed")
        check_readme(sdist, problems)
        check_rating(sdist, problems)
        check_wheel(wheel, problems)
        check_sdist(sdist, problems)
        from_sdist, from_tree = contents(wheel, problems), contents(tree_wheel, problems)
        if from_sdist != from_tree:
            paths = from_sdist.keys() | from_tree.keys()
            differing = sorted(p for p in paths if from_sdist.get(p) != from_tree.get(p))
            problems.append(f"the wheels built from the sdist and from the tree differ in {differing}")
        files = len(from_sdist)
    for problem in problems:
        print(f"check_dist: FAILED: {problem}")
    if problems:
        return 1
    print(f"check_dist: {sdist.name} and {wheel.name} pass twine check --strict")
    print("check_dist: the README renders as Markdown, with absolute links only; pyroma rates it 10/10")
    print(f"check_dist: the wheel holds the package ({files} files with py.typed), no tests/scripts/examples")
    print("check_dist: the wheels built from the sdist and from the tree hold the same files and hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
