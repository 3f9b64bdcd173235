"""The Streamlit pages of the agents' workspace (run by `app.py`); no decision is made here."""
