"""The Kafka side of the SDK. Importing it patches two aiokafka faults, process-wide: every
consumer tolerates records whose header keys are not UTF-8 (:mod:`singlewindow.kafka.records`),
and no client busy-loops on metadata while the broker is away
(:mod:`singlewindow.kafka.metadata`)."""

from singlewindow.kafka.metadata import install as _install_metadata_backoff
from singlewindow.kafka.records import install as _install_tolerant_decoding

_install_tolerant_decoding()
_install_metadata_backoff()
