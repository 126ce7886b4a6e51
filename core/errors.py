"""Exceptions that carry a message meant for the user (shown without a traceback)."""


class UserError(Exception):
    """A problem with the user's input (file, option, config): the message says how to fix it."""


class ConfigError(UserError):
    """An invalid configuration file or override (unknown key, wrong type)."""
