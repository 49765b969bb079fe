"""Content-addressed, write-once blob stores: filesystem and S3."""
