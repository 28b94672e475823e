"""Rendering blocks the pages call in order, so each page stays a short script.

Like ``ui.py``, this package may import streamlit; ``scanner/``, ``llm/`` and ``store/`` never do.
Untrusted scan and model text is rendered as text here: tables, ``st.text``, ``st.code`` or
escaped markdown, never raw HTML or links.
"""
