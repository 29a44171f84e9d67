"""Running the lab leaves the tracked notebooks as they are: students run copies in a git-ignored folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.cli import main
from labkit.errors import ConfigError
from labkit.notebook import editions, jupyterlab
from labkit.notebook.workspace import WORK_DIR, working_copy

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_working_copies_are_made_once_and_then_kept(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (source / name).write_text("{}")

    folder, copied = working_copy(source)
    assert folder == tmp_path / WORK_DIR
    assert copied == ["01_a.ipynb", "02_b.ipynb"]

    (folder / "01_a.ipynb").write_text('{"student": "work"}')  # the student's edits
    (source / "03_c.ipynb").write_text("{}")  # a notebook added to the lab later
    assert working_copy(source) == (folder, ["03_c.ipynb"])
    assert (folder / "01_a.ipynb").read_text() == '{"student": "work"}'


def test_a_folder_without_notebooks_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No notebooks in"):
        working_copy(tmp_path)


def test_the_working_folder_is_git_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"{WORK_DIR}/05_test_flow.ipynb"], cwd=ROOT, check=False
    ).returncode
    assert ignored == 0


def test_labkit_lab_opens_the_working_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    shutil.copyfile(NOTEBOOKS / "01_create_table.ipynb", source / "01_create_table.ipynb")
    commands: list[list[str]] = []

    real_popen = subprocess.Popen

    class FakeJupyter:
        """Stands in for JupyterLab's process: records its command line and exits at once."""

        def __init__(self, command: list[str], **_: Any) -> None:
            commands.append(command)

        def wait(self, timeout: float | None = None) -> int:
            return 0

        def poll(self) -> int:
            return 0

    def popen(command: list[str], **kwargs: Any) -> Any:
        # The local cloud starts processes of its own (its fork server); only JupyterLab is faked.
        if "jupyterlab" in command:
            return FakeJupyter(command, **kwargs)
        return real_popen(command, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    # Nothing was started, so there is no process group to stop.
    monkeypatch.setattr(jupyterlab, "stop_process_group", lambda process, grace: None)

    assert main(["lab", "--notebooks", str(source), "--cloud-port", "0"]) == 0

    (command,) = commands
    assert f"--notebook-dir={tmp_path / WORK_DIR}" in command
    assert (tmp_path / WORK_DIR / "01_create_table.ipynb").is_file()


def test_labkit_lab_opens_the_student_edition_and_the_instructors_one_flag_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a checkout with both editions
    for edition in ("notebooks", "student"):
        (tmp_path / edition).mkdir()
        shutil.copyfile(ROOT / edition / "01_create_table.ipynb", tmp_path / edition / "01_create_table.ipynb")
    monkeypatch.chdir(tmp_path)
    started: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(jupyterlab, "run", lambda command, env: started.append((command, env)) or 0)

    # WHEN `labkit lab` runs, then `labkit lab --instructor`
    assert main(["lab", "--cloud-port", "0"]) == 0
    assert main(["lab", "--instructor", "--cloud-port", "0"]) == 0

    # THEN the first opens copies of the student edition, with nbgrader's instructor tools switched off
    (student, student_env), (teacher, teacher_env) = started
    assert f"--notebook-dir={tmp_path / WORK_DIR}" in student
    copied = json.loads((tmp_path / WORK_DIR / "01_create_table.ipynb").read_text(encoding="utf-8"))
    assert "# YOUR CODE HERE" in "".join("".join(c["source"]) for c in copied["cells"] if c["cell_type"] == "code")
    config = Path(student_env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0])
    page = json.loads((config / "labconfig" / "page_config.json").read_text(encoding="utf-8"))
    assert page == {"disabledExtensions": {"@jupyter/nbgrader": True}}
    server = json.loads((config / "jupyter_server_config.json").read_text(encoding="utf-8"))
    assert set(server["ServerApp"]["jpserver_extensions"].values()) == {False}
    # AND the second copies of the instructor edition, apart, with the solutions and nbgrader as installed
    assert f"--notebook-dir={tmp_path / WORK_DIR / 'instructor'}" in teacher
    solved = (tmp_path / WORK_DIR / "instructor" / "01_create_table.ipynb").read_text(encoding="utf-8")
    assert "### BEGIN SOLUTION" in solved
    assert "JUPYTER_CONFIG_PATH" not in teacher_env or str(config) not in teacher_env["JUPYTER_CONFIG_PATH"]


@pytest.mark.slow
def test_running_a_working_copy_leaves_the_tracked_notebook_unchanged(tmp_path: Path) -> None:
    # GIVEN the tracked notebook 01 and its working copy
    tracked = NOTEBOOKS / "01_create_table.ipynb"
    before = digest(tracked)
    folder, _ = working_copy(NOTEBOOKS, tmp_path / WORK_DIR)
    copy = folder / tracked.name

    # WHEN the copy runs and is saved, as a student's run in JupyterLab saves it
    notebook = nbformat.read(copy, as_version=4)
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(folder)}}).execute()
    nbformat.write(notebook, copy)

    # THEN the copy changed and the tracked notebook did not
    assert digest(copy) != before
    assert digest(tracked) == before


def test_the_editions_are_found_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a folder that is not the repository
    monkeypatch.chdir(tmp_path)
    # THEN the editions are the repository's, beside this install of labkit
    assert editions.edition_dir().resolve() == ROOT / "student"
    assert editions.edition_dir(instructor=True).resolve() == ROOT / "notebooks"
    # AND without the repository, the copies a wheel carries
    monkeypatch.setattr(editions, "__file__", str(tmp_path / "site" / "labkit" / "notebook" / "editions.py"))
    packaged = tmp_path / "site" / "labkit" / "editions" / "student"
    with pytest.raises(ConfigError, match="No student edition found"):
        editions.edition_dir()
    packaged.mkdir(parents=True)
    shutil.copyfile(ROOT / "student" / "01_create_table.ipynb", packaged / "01_create_table.ipynb")
    monkeypatch.setattr(editions, "PACKAGED", tmp_path / "site" / "labkit" / "editions")
    assert editions.edition_dir() == packaged
