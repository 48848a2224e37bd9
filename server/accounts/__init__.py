"""Accounts: users, roles and tokens, passwords, login sessions, failed-login throttles, the secret, the Django import."""
