"""The `toolkit` subcommands, one module each; `toolkit.cli` assembles them.

Each module exposes `add(commands)`, which adds its subparser to argparse's subparsers object and
sets `handler` (a function of the parsed arguments returning the exit status). Handlers only
parse, delegate to the library and print: no training or measuring logic lives here.
"""
