"""Sphinx configuration of kcp's API reference: ``make docs`` builds it into
build/docs/ from the installed package's docstrings (autodoc, Google style
read by napoleon), the CLI's parser (sphinx-argparse) and the Markdown pages
beside this file (MyST)."""

import kcp

project = "kcp"
release = version = kcp.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser", "sphinxarg.ext"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["images"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_numpy_docstring = False
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = f"kcp {release}"
