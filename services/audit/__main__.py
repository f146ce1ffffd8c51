"""``python -m services.audit``: the auditors' command-line tool."""

from services.audit.cli import app

if __name__ == "__main__":
    app()
