"""The admin web service: health, metrics, status page, client list and outbound message API."""
