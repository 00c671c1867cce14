"""Staff users, API keys, the audit log and signed customer links (issue 5).

Services over ``store.staff``; the web layer (``web/security.py``) adds sessions, CSRF and
password hashing on top. Nothing here changes order or stock state."""
