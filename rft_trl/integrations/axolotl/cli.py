"""`axolotl rft-check CONFIG.yaml`: `rft-trl check-config` as an Axolotl CLI subcommand.

Registered through the `axolotl.cli_commands` entry point, which Axolotl 0.19 already supports.
"""

from __future__ import annotations

import click


@click.command(
    name="rft-check",
    help="Check an Axolotl YAML for RFT settings that training would reject or silently ignore "
    "(e.g. `rft: true` without the RFT plugin in `plugins:`).",
)
@click.argument("config", type=click.Path(dir_okay=False))
def check_config_command(config: str) -> None:
    """Run the `rft-trl check-config` checks on an Axolotl config and exit with their status."""
    from rft_trl.commands.check_config import UnreadableConfigError, check_file, print_result

    try:
        result = check_file(config, kind="axolotl")
    except UnreadableConfigError as error:
        raise click.ClickException(str(error)) from None
    raise SystemExit(print_result(result))
