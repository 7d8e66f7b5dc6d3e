"""The command line's exit codes, in one place: every command and batch summary uses these."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # everything asked was done
    FAILED = 1  # the command failed, or some rows or files did
    USAGE = 2  # bad arguments, settings or input files: nothing was done
    INTERRUPTED = 130  # Ctrl-C or SIGTERM: what was finished is kept, a re-run resumes
    BROKEN_PIPE = 141  # stdout's reader left (`| head`): 128 + SIGPIPE, as a shell reports for other tools
