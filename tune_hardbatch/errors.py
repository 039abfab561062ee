"""The one exception type for bad user input: the CLI prints it as one `error:` line and exits 2."""


class UserError(Exception):
    """Bad input from the user (config, data location, resources). Never a bug in the tool."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)
