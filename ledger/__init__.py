"""The verifiable log: RFC 9162 hashing and proofs, tiles, checkpoints, receipts.

Pure core (bytes in, bytes out): hashing, proof, tiles, note, checkpoint,
receipt. Edges: store (the port), sqlite and postgres (its adapters), log.
"""
