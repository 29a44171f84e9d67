"""The two editions of the notebooks, and the nbgrader course they come from.

`notebooks/` is the instructor edition: solutions between `### BEGIN SOLUTION` / `### END SOLUTION`,
check cells as nbgrader autograded tests with their points, every other cell locked. The student
edition (`student/`) is what nbgrader itself makes of it (`nbgrader generate_assignment`): solutions
replaced by `# YOUR CODE HERE`, outputs cleared, locked cells read-only. `write_course` lays out a
course directory for an instructor's own nbgrader cycle (generate, collect, autograde, feedback,
export); `generate_student_edition` runs that first step on a throwaway course to refresh `student/`.
nbgrader is the `instructor` extra: only these two need it, and only when they run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from labkit.errors import ConfigError

COURSE_ID = "orders-lab"
ASSIGNMENT = "orders-lab"
STUDENT_DIR = "student"
INSTRUCTOR_DIR = "notebooks"
# Where a wheel carries the two editions (pyproject.toml's force-include), for an install without the repository.
PACKAGED = Path(__file__).resolve().parents[1] / "editions"

# nbgrader's settings for the course, read by every nbgrader command run in its directory.
NBGRADER_CONFIG = f'''"""nbgrader's settings for the Orders Lab course (written by `labkit course`)."""

import os
import sys

c = get_config()  # noqa: F821 - nbgrader defines it when it reads this file
c.CourseDirectory.course_id = "{COURSE_ID}"

# The student edition: an unsolved exercise is this comment, so it runs and its check cell says what is
# missing (nbgrader's default stub raises NotImplementedError instead).
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE"}}

# Notebooks 06 and 07 wait for SQS retries and for a backlog to drain: a cell may take minutes, not 30 s.
c.Execute.timeout = 300

# Autograding runs each notebook in a fresh kernel on a local cloud of its own: no AWS account, and nothing
# shared between students, whatever this shell points AWS at.
os.environ["LABKIT_BACKEND"] = "moto"
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(name, None)
# nbgrader runs `alembic` to set up its gradebook: the one beside this Python, activated or not.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
'''


def edition_dir(instructor: bool = False) -> Path:
    """The folder of an edition: the current folder's (the repository), the repository beside an editable
    install, or the copy a wheel carries; the first that holds notebooks."""
    name = INSTRUCTOR_DIR if instructor else STUDENT_DIR
    repository = Path(__file__).resolve().parents[2]
    for candidate in (Path(name), repository / name, PACKAGED / ("instructor" if instructor else "student")):
        if candidate.is_dir() and any(candidate.glob("*.ipynb")):
            return candidate
    raise ConfigError(
        f"No {'instructor' if instructor else 'student'} edition found ({name}/ here, beside labkit, or in its "
        "install): run from the repository, or pass --notebooks."
    )


def write_course(target: Path, notebooks: Path) -> Path:
    """Lay out an nbgrader course in *target*: `nbgrader_config.py` and `source/orders-lab/` (the instructor edition).

    Returns:
        The assignment's source folder. What *target* held already is kept; the notebooks are copied anew.
    Raises:
        ConfigError: *notebooks* holds no notebooks.
    """
    found = sorted(notebooks.glob("*.ipynb"))
    if not found:
        raise ConfigError(f"No notebooks in {notebooks}: run from the repository or pass --notebooks.")
    source = target / "source" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    for notebook in found:
        shutil.copyfile(notebook, source / notebook.name)
    (target / "nbgrader_config.py").write_text(NBGRADER_CONFIG, encoding="utf-8")
    return source


def nbgrader(course: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run nbgrader's own command line in *course*; raises ConfigError naming the fix when it fails."""
    try:
        import nbgrader as _nbgrader  # noqa: F401 - only to say how to install it
    except ImportError as exc:
        raise ConfigError("nbgrader is not installed: pip install -e '.[instructor]'.") from exc
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ConfigError(f"nbgrader {' '.join(args)} failed in {course}:\n{tail}")
    return done


def generate_student_edition(notebooks: Path, out: Path) -> list[Path]:
    """Make the student edition of *notebooks* with `nbgrader generate_assignment` and put it in *out*.

    Returns:
        The notebooks written. *out* holds exactly the new edition afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="labkit-course-") as folder:
        course = Path(folder)
        write_course(course, notebooks)
        nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
        release = course / "release" / ASSIGNMENT
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob("*.ipynb"):
            stale.unlink()
        written = []
        for notebook in sorted(release.glob("*.ipynb")):
            target = out / notebook.name
            shutil.copyfile(notebook, target)
            target.chmod(0o644)
            written.append(target)
    return written
