"""ftwiz.tui: the Textual wizard. It calls the same ``ftwiz.core`` entry points as the CLI."""
