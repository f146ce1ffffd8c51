"""``python -m services.webhooks``: the composition root of the webhook delivery service.

Its settings and keys are read first: without ``WEBHOOKS_KEYS_FILE`` it exits at once (code
2) saying so, before it connects anywhere."""

from services.webhooks.config import WebhooksSettings
from services.webhooks.service import NAME, webhooks_process
from services.webhooks.signing import WebhookKeyError, load_keys
from singlewindow import runtime
from singlewindow.logs import configure_logging
from singlewindow.settings import get_settings

if __name__ == "__main__":
    configure_logging(NAME)
    own = runtime.own_settings(NAME, WebhooksSettings.read)
    try:
        if own.keys_file is None:
            raise WebhookKeyError(
                "no webhook keys: set WEBHOOKS_KEYS_FILE to the keyring the intake uses "
                "(INTAKE_WEBHOOK_KEYS_FILE), lines 'version:hexsecret'"
            )
        keys = load_keys(own.keys_file)
    except WebhookKeyError as exc:
        runtime.refuse_to_start(exc)
    runtime.main(
        NAME,
        lambda health: webhooks_process(get_settings(), own, keys, health),
        own.metrics_port,
    )
