"""Data for each page: pure fetch-and-shape functions (API and Prometheus in, frames and dataclasses out),
kept apart from rendering so they are unit-testable without Streamlit."""
