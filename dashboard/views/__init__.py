"""Rendering: one module per page, each with a `page()` that Streamlit runs (and AppTest can run alone)."""
