"""The ``sifa`` command's entry point: one readable line, not a traceback, when the node's own
packages are not installed (``pip install .`` gives a lawyer only ``sifa-verify``)."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from api.cli import main as cli
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        print(f"sifa: the node needs its server packages ({missing} is missing): pip install 'sifa[server]'",
              file=sys.stderr)  # fmt: skip
        return 2
    return cli()


if __name__ == "__main__":
    sys.exit(main())
