"""The platform: configuration, composition, observability, the `tctf` CLI and packaging."""
