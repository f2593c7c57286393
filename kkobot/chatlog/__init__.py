"""The chat log: rows, the journal, batches into the database, refused rows, ping rows."""
