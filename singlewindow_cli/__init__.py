"""``sw``: the trader's command line for the Single Window (a console script installed with
the project: ``.venv/bin/sw``).

A client of the intake's public HTTP API and nothing else: it imports no server-side code
(``services``), so that what it shows is what any trader's own software can get, and so that
it could ship on its own. The one exception is ``sw login --dev-uscc``, which mints a token
with the local development issuer (``services.intake.devissuer``), imported only then.

- :mod:`.config`: where the token is kept (mode 0600) and which platform is asked;
- :mod:`.api`: the HTTP calls, and the exit code of every way a call can fail;
- :mod:`.sse`: a Server-Sent Events parser (``GET /v1/declarations/{id}/events``);
- :mod:`.watch`: following a declaration's status (SSE when the platform answers it, long
  polls otherwise) and when to stop;
- :mod:`.render`: what a person sees (rich tables and panels, problem documents);
- :mod:`.main`: the commands (typer).
"""
