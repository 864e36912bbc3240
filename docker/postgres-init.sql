-- Runs once, on an empty data volume: the MLflow store gets its own database next to Prefect's
-- (POSTGRES_DB creates `prefect`).
CREATE DATABASE mlflow;
