"""Notifications: Jinja2 templates (email text + HTML, SMS) and rendering. Templates can be
overridden by placing files of the same name in the config folder's ``templates/``."""
