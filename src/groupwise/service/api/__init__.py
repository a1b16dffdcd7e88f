"""The JSON API of the bounty service (``/api/v1``)."""
