"""Announcements: operators' schedules in kb_schedule, sent when due, every send recorded in kb_schedule_logs."""
