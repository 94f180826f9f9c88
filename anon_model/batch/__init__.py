"""Anonymizing many files: the `anon-model anonymize` run (one or many processes), its audit manifest and report."""
