"""The notebooks and the book: jupytext pairs and generated exercises in sync, the
number-aware nbval comparison, the HTML build, the appendix's tables, the built book in
a browser."""
