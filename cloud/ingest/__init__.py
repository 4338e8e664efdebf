"""MQTT -> Kafka bridge, Kafka -> TimescaleDB store, geo and trip processors."""
