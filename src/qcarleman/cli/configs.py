"""``qcarleman configs``: list the shipped example configs, or print one.

Every command that takes a CONFIG (train, prune, sparse-train, hybrid --config) accepts these
names as well as a path to a TOML file; copy one with ``configs show NAME > FILE.toml`` to make
your own. Names use ``-``; the older ``_`` spellings (``hybrid_digits_cpu``) still work.

Examples::

    qcarleman configs
    qcarleman configs show digits-cnn
    qcarleman configs show hybrid-digits-cpu > my-hybrid.toml
    qcarleman configs --json
"""

from __future__ import annotations

import argparse

from .helptext import command_help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "configs", help="list the shipped example configs, or print one", **command_help(__doc__)
    )
    p.add_argument(
        "action", nargs="?", choices=["list", "show"], default="list", help="list (default) or show"
    )
    p.add_argument("name", nargs="?", help="config name for `show` (see the list)")
    p.add_argument("--json", action="store_true", help="list as JSON {name: description}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import dumps_json
    from ..errors import UsageError
    from ..training.config import example_config, example_configs

    if args.action == "show":
        if not args.name:
            raise UsageError("`configs show` needs a NAME; `qcarleman configs` lists them")
        print(example_config(args.name).read_text(), end="")
        return 0
    if args.name:
        raise UsageError(f"unexpected {args.name!r}; use `qcarleman configs show {args.name}`")
    configs = example_configs()
    if args.json:
        print(dumps_json(configs))
        return 0
    width = max(map(len, configs))
    for name, text in configs.items():
        print(f"{name:<{width}}  {text}")
    print("\n`qcarleman configs show NAME` prints one; any command taking CONFIG accepts NAME.")
    return 0
