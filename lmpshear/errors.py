"""Exceptions the CLI turns into a message and an exit code, never a traceback."""


class LmpshearError(Exception):
    exit_code = 1


class UserError(LmpshearError):
    """Bad input: a config, a path, an option. Exit code 2; nothing is written or lost."""

    exit_code = 2


class RunError(LmpshearError):
    """A simulation stopped (blow-up, lost atoms, LAMMPS error). What was written is kept."""

    exit_code = 3


class Interrupted(LmpshearError):
    """A run stopped on Ctrl-C or SIGTERM. What was written up to the last checkpoint resumes."""

    exit_code = 130


#: the signals (SIGINT, SIGTERM) that have interrupted this process: what an error raised while one
#: unwound the stack was caused by (a C extension's import turns the KeyboardInterrupt into an ImportError)
signals_received: list[str] = []
