"""counterbrief: a curated archive of defector accounts and the counter-messaging briefs made from it."""

__version__ = "0.1.0"
