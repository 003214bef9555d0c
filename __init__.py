"""The repository root is counterbrief's bundled archive.

setup.cfg maps this folder to the package ``counterbrief._bundled``, so that an installed
counterbrief finds its stories, sources, vocabulary, recipes and templates with
importlib.resources, in editable and non-editable installs alike. Nothing to import here.
"""
