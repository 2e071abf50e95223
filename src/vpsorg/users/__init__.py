"""People who log in to the web panel: users of an account, their passwords and sessions."""
