"""Errors meant for the user: one clear line, no trace unless --debug."""


class RlscaleError(Exception):
    """An error the user can act on; the CLI prints it as one line."""

    exit_code = 1


class InputError(RlscaleError):
    """Bad input data or arguments: nothing is written, exit code 2."""

    exit_code = 2
