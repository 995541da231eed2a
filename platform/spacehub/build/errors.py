class BuildFailed(Exception):
    """The app could not be built; `message` is what the developer must read to fix it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
