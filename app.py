"""The agents' workspace: `streamlit run app.py` (or `make run`) serves it at http://127.0.0.1:8501.

Only navigation lives here; each page is a thin module under `ui/` that reads input, calls one
library function and shows what it returns. Pages are files (not callables) so that
`AppTest.switch_page("ui/knowledge.py")` can open them in tests.
"""

import streamlit as st

st.set_page_config(page_title="sopilot", page_icon=":material/support_agent:", layout="wide")

st.navigation([
    st.Page("ui/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("ui/knowledge.py", title="Knowledge", icon=":material/menu_book:"),
    st.Page("ui/evaluation.py", title="Evaluation", icon=":material/analytics:"),
    st.Page("ui/audit.py", title="Audit", icon=":material/fact_check:"),
    st.Page("ui/operations.py", title="Operations", icon=":material/monitoring:"),
]).run()
