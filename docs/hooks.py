"""MkDocs hooks:

- the committed results (analysis/results/**/*.md and *.png) join the site under results/, so that the
  reproduction pages show them from their one home in the repository;
- a page's ``<!-- generated: NAME -->`` markers are replaced by what the schema makes (GENERATED), so that
  the key tables and the stage table are never pasted by hand;
- MathJax 3's tex-svg component (from the sphinx-mathjax-offline wheel: the site needs no CDN, and
  works from file://) is copied into site/assets/mathjax.
"""

import re
import shutil
from pathlib import Path

SUFFIXES = {".md", ".png"}
MARKER = re.compile(r"^<!-- generated: (.+?) -->$", re.MULTILINE)


def _generated() -> dict:
    from lmpshear import spec
    from lmpshear.config import analysis_block, key_table
    from lmpshear.stages import stage_table

    return {
        "analysis block": lambda: "```toml\n" + analysis_block() + "\n```",
        "stage table": stage_table,
        "system keys": lambda: key_table(spec.System),
        "species keys": lambda: key_table(spec.Species),
        "sigma-epsilon keys": lambda: key_table(spec.SigmaEpsilon),
        "yukawa keys": lambda: key_table(spec.YukawaPotential),
        "protocol keys": lambda: key_table(spec.Protocol),
        "rate keys": lambda: key_table(spec.Rate),
    }


def fill(markdown: str) -> str:
    """``markdown`` with each line ``<!-- generated: NAME -->`` replaced (a marker alone on its line: one
    quoted in running text stays); an unknown NAME is an error."""
    generated = _generated()

    def made(match: re.Match) -> str:
        if match.group(1) not in generated:
            raise ValueError(f"docs: no generated content named {match.group(1)!r} (known: {', '.join(generated)})")
        return generated[match.group(1)]()

    return MARKER.sub(made, markdown)


def on_page_markdown(markdown, page, config, files):
    return fill(markdown)


def on_files(files, config):
    from mkdocs.structure.files import File  # here: the tests import this module without the docs extra

    root = Path(config.config_file_path).parent / "analysis" / "results"
    for path in sorted(root.rglob("*")):
        if path.suffix in SUFFIXES and path.is_file():
            files.append(File.generated(config, "results/" + path.relative_to(root).as_posix(), abs_src_path=str(path)))
    return files


def on_post_build(config):
    from importlib.metadata import files

    (script,) = [f for f in files("sphinx-mathjax-offline") if f.name == "tex-svg.js"]
    target = Path(config.site_dir) / "assets" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(script.locate(), target / "tex-svg.js")
