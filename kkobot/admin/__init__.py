"""Running the server from outside: the admin web, kkobot-admin, kkobot-config, kkobot-chat, metrics."""
