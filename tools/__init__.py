"""Maintainer tools: notebook execution, exercise generation, the nbval number comparison."""
