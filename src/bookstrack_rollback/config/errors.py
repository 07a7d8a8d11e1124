class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names its source (file, option, env)."""
