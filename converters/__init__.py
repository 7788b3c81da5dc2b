"""EdgeSDK converters."""
