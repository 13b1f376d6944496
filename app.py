"""Browser chat over your articles: `python app.py [--index DIR] [--articles DIR] [--port P]` (same as `qa chat`)."""
from qa.surfaces.app import main, parse_args  # noqa: F401 - parse_args is part of this script's interface

if __name__ == "__main__":
    main()
