"""Configuration, database and security primitives of the bounty service."""
