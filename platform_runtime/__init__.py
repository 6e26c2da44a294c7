"""The shared runtime every service is built on: written once, used by all five services and the gateway.

Modules: settings (typed environment), errors (domain errors and their gRPC codes), auth (signed tokens),
tenancy (who is calling, for which town), db (engine, unit of work, row-level security), pii (encryption and
blind indexes), events (the envelope), outbox (transactional outbox and relay), consumer (idempotent Kafka
consumer with dead letters), telemetry (OpenTelemetry), grpc_server / grpc_client, topics, migrations.
Nothing here connects to anything at import time.
"""
