"""The court node: HTTP API, settings, processes and the sifa command."""
