"""The package as a whole: its layers and imports, its public face, the CLI's help, the
wheel, careless input, and what it shows (display, explorers)."""
