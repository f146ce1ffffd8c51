"""Kubernetes manifests, and the generator of the Strimzi KafkaUsers (kafka_users.py)."""
