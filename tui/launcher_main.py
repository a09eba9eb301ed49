"""``python -m ftwiz.tui.launcher_main``: the console script without an installed entry point."""

from ftwiz.tui.launcher import main

if __name__ == "__main__":
    main()
