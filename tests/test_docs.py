"""The README's "Source code layout" tour names every file of the tree."""
import subprocess

from conftest import ROOT

AREAS = ["src", "drivers", "cache", "tests", "contrib", ".ci", "configure.ac", "Makefile.am"]


def test_readme_tour_names_every_file():
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--"] + AREAS,
                           capture_output=True, text=True, check=True).stdout.split()
    assert files, "git ls-files found nothing"
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## Source code layout"):]
    missing = [f for f in files
               if not f.startswith("tests/vectors/") and "`%s`" % f not in tour]
    assert not missing, "README tour lacks: %s" % ", ".join(missing)
