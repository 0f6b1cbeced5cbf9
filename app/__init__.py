"""TuneWise's Streamlit app: the entry point and shared UI helpers. Pages live in ../pages."""
