"""Create the database and the admin user, and collect the static files (run once, in this folder)."""

import os

import django
from django.core.management import call_command

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()
call_command("migrate", verbosity=0, interactive=False)
call_command("collectstatic", verbosity=0, interactive=False)

from django.contrib.auth.models import User  # noqa: E402  (after setup)

User.objects.create_superuser("admin", "admin@example.com", "s3cret-pass")
