"""TuneWise engine: model resolution, method registry, counting, estimates, evidence.

Never imports streamlit; the app and the CLI render what this package returns.
"""

__version__ = "0.1.0"
