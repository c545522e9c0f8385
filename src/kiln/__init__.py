"""kiln: bake, test, ship and retire golden machine images."""

__version__ = "0.1.0"
