"""Evidence records and their hashing."""
