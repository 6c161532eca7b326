"""MkDocs hook: the committed results (analysis/results/**/*.md and *.png) join the site under results/,
so that the reproduction pages show them from their one home in the repository."""

from pathlib import Path

from mkdocs.structure.files import File

SUFFIXES = {".md", ".png"}


def on_files(files, config):
    root = Path(config.config_file_path).parent / "analysis" / "results"
    for path in sorted(root.rglob("*")):
        if path.suffix in SUFFIXES and path.is_file():
            files.append(File.generated(config, "results/" + path.relative_to(root).as_posix(),
                                        abs_src_path=str(path)))
    return files
