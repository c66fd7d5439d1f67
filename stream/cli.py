"""The ``markov`` command line.

    markov forecast --ticker SPX --days 5 [--confidence 0.9] [--json]
    markov ensemble --config config/production.yaml
    markov validate --ticker SPX --backtest-days N [--horizons 1,5] [--plot FILE] [--csv FILE]
    markov run [--config FILE]            the streaming service (embedded feed by default)
    markov replay FILE --to embedded|kafka [--speed max|1|N]
    markov record --out FILE [...]

Every user error (bad argument, bad config, missing data, unreachable broker) is one line
on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from config.errors import ConfigError
from connectors.data_sources import DataSourceError
from connectors.kafka_transport import BrokerUnavailableError
from stream.engine import EngineFailedError
from stream.service import StateMissingError

Command = Callable[[argparse.Namespace], int]

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer


class UserError(Exception):
    """An error whose message is all the user needs (one line, no traceback)."""


def check_output_path(flag: str, path: Path) -> None:
    """Refuse an output path that cannot be written, before the command spends minutes."""
    parent = path.parent  # Path("x.png").parent is Path(".")
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file name")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "no such directory"
        raise UserError(f"{flag} {path}: {parent}: {what}")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path}: not writable")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (argparse's own error
    prints the usage block first); ``--help`` still prints the full help. Subcommand
    parsers inherit the class (``add_subparsers`` uses ``type(self)``)."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse messages may wrap
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="markov", description="Streaming price-range forecaster (Rust filters + ensemble)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from stream import cli_models, cli_stream

    cli_models.register(sub)
    cli_stream.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args)
    except (
        UserError,
        ConfigError,
        DataSourceError,
        BrokerUnavailableError,
        EngineFailedError,
        StateMissingError,
    ) as exc:
        print(f"markov {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"markov {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`markov ... | head`): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
