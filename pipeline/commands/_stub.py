"""Helper for subcommands whose parts are not built yet."""
from pipeline.errors import UserError


def not_built(command: str, what: str) -> UserError:
    return UserError(f"'mcmt {command}' is not available yet: {what} is not built in this version")
