"""Subcommands of the lpu command line, one module each."""
