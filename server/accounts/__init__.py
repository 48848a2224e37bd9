"""Accounts: users and roles, tokens, passwords, login sessions, failed-login throttles, the server secret, the Django import."""
