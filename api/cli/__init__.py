"""The ``vecledger`` command line, built with click.

Three kinds of command, grouped in ``vecledger --help`` the way a new user meets them:

- running the service (``serve.py``): ``serve`` (the API over a folder or S3 root) and ``materialize`` (folding
  only, next to servers started with ``--no-materialize``);
- talking to a running server (``browse.py``, ``importer.py``, ``export.py``): ``ls``, ``import``,
  ``export``, ``query``;
- offline administration of a storage root (``offline.py``): ``restore``, ``replay``, ``audit``.

Every server option also reads a ``VECLEDGER_*`` environment variable, as it always has.
"""

from __future__ import annotations

import logging

import click

SECTIONS = {
    "Run the service": ["serve", "materialize"],
    "Use a running server (--endpoint, default http://127.0.0.1:8000)": [
        "ls",
        "import",
        "export",
        "query",
        "retention",
    ],
    "Administer a storage root directly (--root)": ["restore", "replay", "audit"],
}


class Sections(click.Group):
    """``vecledger --help`` lists the commands under the headings of ``SECTIONS``."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for title, names in SECTIONS.items():
            rows = [(n, self.commands[n].get_short_help_str(80)) for n in names if n in self.commands]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=Sections, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def cli() -> None:
    """vecledger: a self-hosted vector bucket service speaking the S3 Vectors, OSS Vectors and TOS
    Vectors APIs.

    \b
    Start a development server on ./data, then use it from another shell:
      vecledger serve --dev
      vecledger import --bucket docs --index main --create-index vectors.parquet
      vecledger ls --bucket docs
      vecledger query --bucket docs --index main --vector '[0.1, 0.2, 0.3]'

    Run `vecledger COMMAND --help` for a command's options.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from api.cli import browse, export, importer, offline, retention, serve

    commands = (serve.serve, serve.materialize, browse.ls, importer.import_, export.export, browse.query)
    for command in (*commands, retention.retention):
        cli.add_command(command)
    for command in offline.COMMANDS:
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """The console script: ``vecledger ...``."""
    cli.main(args=argv, prog_name="vecledger")
