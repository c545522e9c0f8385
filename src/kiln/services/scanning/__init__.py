"""Vulnerability scanning on open data: OSV advisories (import, update, status), matching an image's
installed packages against them with each distribution's own version order, and pending updates from
the distributions' security suites."""
