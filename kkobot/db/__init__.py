"""The database: the adbapi pool, its errors, and the shapes of the tables kkobot writes."""
