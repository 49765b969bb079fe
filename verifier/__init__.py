"""The lawyer's offline verifier, sifa-verify. Imports only ledger's pure core and evidence."""
